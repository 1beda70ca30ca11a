/* libFuzzer driver for the recovery request a reconnecting window sends
 * (server/recovery.c): the upgrade request's target with its dfws_recover
 * parameter, percent-decoded and validated against the groups the window
 * holds. Untrusted bytes from any browser: every input gets an answer
 * (a request, or every held group failed), never a crash, and the answer
 * respects the bounds. */
#include "recovery.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const HELD[] = {
    "g1", "g2", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = NULL;
    size_t vlen = 0;
    dfws_recovery_req_t req;
    int rc = dfws_recovery_param((const char *)data, size, &value, &vlen);
    if (rc == 1 && vlen > DFWS_RECOVERY_MAX_PARAM)
        abort();
    if (rc == 1 || rc == -1) {
        if (dfws_recovery_parse(rc == 1 ? value : "", rc == 1 ? vlen : 0, HELD, 3, &req) == 0) {
            if (req.nwants > DFWS_RECOVERY_MAX_GROUPS || req.nwants + req.nfailed > 3)
                abort();
            for (size_t i = 0; i < req.nwants; i++)
                if (strlen(req.wants[i].epoch) != 8)
                    abort();
            dfws_recovery_req_free(&req);
        }
    }
    free(value);
    return 0;
}
