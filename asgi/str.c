#include "str.h"

#include <llhttp.h>

#define DFWS_STR_DEFINE(name, literal) PyObject *dfws_str_##name;
DFWS_STRINGS(DFWS_STR_DEFINE)
#undef DFWS_STR_DEFINE

#define METHOD_SLOTS 64
static PyObject *methods[METHOD_SLOTS];

int dfws_str_init(void)
{
#define DFWS_STR_INIT(name, literal)                                                               \
    if (!(dfws_str_##name = PyUnicode_InternFromString(literal)))                                 \
        return -1;
    DFWS_STRINGS(DFWS_STR_INIT)
#undef DFWS_STR_INIT
    /* llhttp_method_name() aborts on numbers it does not know: walk
     * llhttp's own table of HTTP methods instead. */
#define DFWS_METHOD_INIT(num, name, string)                                                        \
    if (num < METHOD_SLOTS && !(methods[num] = PyUnicode_InternFromString(#string)))               \
        return -1;
    HTTP_METHOD_MAP(DFWS_METHOD_INIT)
#undef DFWS_METHOD_INIT
    return 0;
}

PyObject *dfws_str_for_method(int method)
{
    if (method >= 0 && method < METHOD_SLOTS && methods[method]) {
        Py_INCREF(methods[method]);
        return methods[method];
    }
    return PyUnicode_FromString(llhttp_method_name((llhttp_method_t)method));
}
