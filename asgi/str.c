#include "str.h"
#include "request.h"

#include <string.h>

#define DFWS_STR_DEFINE(name, literal) PyObject *dfws_str_##name;
DFWS_STRINGS(DFWS_STR_DEFINE)
#undef DFWS_STR_DEFINE

#define METHOD_SLOTS 64
static PyObject *methods[METHOD_SLOTS];

int dfws_str_init(void)
{
#define DFWS_STR_INIT(name, literal)                                                               \
    if (!(dfws_str_##name = PyUnicode_InternFromString(literal)))                                  \
        return -1;
    DFWS_STRINGS(DFWS_STR_INIT)
#undef DFWS_STR_INIT
    /* every method number request.h names */
    for (int i = 0; i < METHOD_SLOTS; i++) {
        const char *name = dfws_http_method_name(i);
        if (strcmp(name, "UNKNOWN") && !(methods[i] = PyUnicode_InternFromString(name)))
            return -1;
    }
    return 0;
}

PyObject *dfws_str_for_method(int method)
{
    if (method >= 0 && method < METHOD_SLOTS && methods[method]) {
        Py_INCREF(methods[method]);
        return methods[method];
    }
    return PyUnicode_FromString(dfws_http_method_name(method));
}
