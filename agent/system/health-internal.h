/* SPDX-License-Identifier: MIT */
#pragma once

/* What health.c (the rounds) and health-checks.c (the kinds of check) share. Each check gets a
 * budget of time; it returns whether it passed, and in *detail (to be freed) what it saw. */

#include <stdbool.h>

#include "system/health.h"

bool health_check_http(const HealthCheck *hc, usec_t budget, char **detail);
bool health_check_tcp(const HealthCheck *hc, usec_t budget, char **detail);
bool health_check_units(const HealthCheck *hc, usec_t budget, char **detail);
bool health_check_no_failed_units(usec_t budget, char **detail);
bool health_check_command(const HealthCheck *hc, usec_t budget, char **detail);
