/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "system/bus.h"
#include "system/notify.h"
#include "basic/macro.h"

const char *system_bus_address(void) {
        return getenv("DBUS_SYSTEM_BUS_ADDRESS") ?: "unix:path=/run/dbus/system_bus_socket";
}

int system_bus_open(usec_t deadline, sd_bus **ret, Error *e) {
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, system_bus_address());
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        while (r >= 0 && (r = sd_bus_is_ready(bus)) == 0) {
                usec_t now;

                r = sd_bus_process(bus, NULL);
                if (r != 0)
                        continue;
                now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        r = -ETIMEDOUT;
                else if ((r = sd_bus_wait(bus, deadline - now)) == -EINTR)
                        r = 0;
        }
        if (r == -ETIMEDOUT)
                return error_set(e, r, "no answer on the system bus (%s)", system_bus_address());
        if (r < 0)
                return error_set(e, r, "cannot connect to the system bus (%s): %s", system_bus_address(), strerror(-r));
        *ret = TAKE_PTR(bus);
        return 0;
}

int bus_call_timeout(sd_bus *bus, usec_t deadline) {
        usec_t now = now_usec(CLOCK_MONOTONIC);

        /* Every call starts with a fed watchdog: a call to a responsive systemd takes
         * milliseconds, one to an unresponsive one is bounded by the deadline. */
        notify_watchdog();
        return now >= deadline ? -ETIMEDOUT : sd_bus_set_method_call_timeout(bus, deadline - now);
}
