/* SPDX-License-Identifier: MIT */
#pragma once

/* The system bus and systemd's manager on it (sd-bus), with every wait bounded. Used by the
 * systemd-units health checks and by the activation's look for transient units. */

#include <systemd/sd-bus.h>

#include "basic/error.h"
#include "basic/timeutil.h"

#define SYSTEMD_SERVICE "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
#define SYSTEMD_UNIT "org.freedesktop.systemd1.Unit"

/* $DBUS_SYSTEM_BUS_ADDRESS, else the standard socket. */
const char *system_bus_address(void);

/* Like sd_bus_open_system(), but bounded: sd-bus itself waits up to 90 s for a bus that accepts
 * the connection and then says nothing (a hung D-Bus daemon), and that even in sd_bus_flush().
 * reterr says which bus and why. */
int system_bus_open(usec_t deadline, sd_bus **ret, Error *reterr);

/* Each call gets what is left until the deadline, so that several calls together keep to it;
 * the watchdog is fed before it (notify_watchdog). */
int bus_call_timeout(sd_bus *bus, usec_t deadline);
