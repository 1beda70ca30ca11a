/* dfws-asgi's options, declared once (server/options.c): every flag's
 * name, spelling, type, field of dfws_cli_t, default, range, help and
 * peers' equivalents. The getopt parser and dfws_cli_set() (server/cli.c),
 * the defaults, --help, --help-markdown (docs/cli.md's tables) and the
 * options dict handed to Python (asgi/module.c) all walk this table. */
#ifndef DFWS_OPTIONS_H
#define DFWS_OPTIONS_H

#include "cli.h"

#include <stddef.h>
#include <stdio.h>

typedef enum {
    DFWS_OPT_STRING,   /* const char *; `check` may refuse a value */
    DFWS_OPT_INT,      /* int in lo..hi */
    DFWS_OPT_LONG,     /* long in lo..hi */
    DFWS_OPT_SIZE,     /* size_t in lo..hi (bytes) */
    DFWS_OPT_SECONDS,  /* double >= 0; DFWS_OPT_F_MINUS_ONE: daphne's -1 = no limit (0) */
    DFWS_OPT_NUMBER,   /* double >= 0 */
    DFWS_OPT_ENUM,     /* int: the index of the value in `choices` */
    DFWS_OPT_BOOL,     /* int 0/1 from true/false/yes/no/on/off/1/0 */
    DFWS_OPT_FLAG,     /* no value: sets an int field to `lo` (1, or 0 for a --no-*) */
    DFWS_OPT_CLEAR,    /* no value: sets a const char * field to NULL (--no-server-name) */
    DFWS_OPT_OCTAL,    /* int: file permissions, 660, 0660 or 0o660 */
    DFWS_OPT_DURATION, /* long seconds: 90, 30m, 12h, 7d, 1h30m */
    DFWS_OPT_LIST,     /* const char *[hi], its length at `count_offset` (repeatable) */
    DFWS_OPT_ACTION,   /* only `hook` does something (-e, --help, --version) */
} dfws_opt_type_t;

enum {
    DFWS_OPT_F_MINUS_ONE = 1,  /* SECONDS: -1 (any negative) means 0, as daphne's "no limit" */
    DFWS_OPT_F_UNSET = 2,      /* the field starts at -1 ("not given") when there is no default */
    DFWS_OPT_F_NOKEY = 4,      /* another row owns the field: not in the options dict */
    DFWS_OPT_F_POSITIONAL = 8, /* APP: no flag, not in --help nor docs/cli.md */
};

typedef struct dfws_option_s dfws_option_t;

/* A parse hook: applies `arg` (NULL for an option without a value) to
 * `cli`. Returns 0, DFWS_CLI_EXIT (--help, --version: printed, exit 0) or
 * -1 with a message in err (the generic "--NAME takes ...: VALUE" when err
 * is left empty). */
typedef int (*dfws_opt_hook_t)(dfws_cli_t *cli, const dfws_option_t *o, const char *arg, char *err,
                               size_t errlen);

struct dfws_option_s {
    const char *name;  /* long flag without "--", as --help shows it */
    const char *alias; /* another spelling accepted (daphne's underscores vs dashes) */
    const char *key;   /* options dict key and dfws_cli_set() name; NULL: name with _ for - */
    char short_flag;   /* 0: none */
    dfws_opt_type_t type;
    unsigned flags;             /* DFWS_OPT_F_* */
    size_t offset;              /* of the field in dfws_cli_t */
    size_t count_offset;        /* LIST: of its int length */
    long lo, hi;                /* INT/LONG/SIZE range; FLAG: the value set; LIST: at most hi */
    const char *const *choices; /* ENUM: NULL-terminated */
    const char *def;            /* default, parsed like a command-line value; NULL: 0 / NULL */
    const char *env;       /* environment variable that replaces `def` when set and not empty */
    const char *implies;   /* name of a FLAG row applied along (--reload-dir implies --reload) */
    dfws_opt_hook_t check; /* STRING: refuses a value (err filled), after the type's parse */
    dfws_opt_hook_t hook;  /* ACTION: the whole parse */
    const char *metavar;   /* NULL: from the type (N, S, B, PATH ...) */
    int section;           /* index in dfws_option_sections */
    const char *help;      /* --help, one line or a few; "\n" breaks a line */
    const char *doc;       /* docs/cli.md's meaning (markdown); NULL: help */
    const char *def_doc;   /* the default as said in --help and docs; NULL: def */
    const char *daphne;    /* daphne 4's equivalent, "same" ...; NULL: none */
    const char *uvicorn;   /* uvicorn's; NULL: none */
    const char *gunicorn;  /* gunicorn's; NULL: none */
    const char *granian;   /* granian's; NULL: none */
};

extern const dfws_option_t dfws_options[];
extern const size_t dfws_n_options;
extern const char *const dfws_option_sections[];
extern const size_t dfws_n_option_sections;

/* strtol in lo..hi, the whole string; 0 or -1. */
int dfws_cli_parse_long(const char *s, long lo, long hi, long *out);

/* The row whose key, name or alias is `name` ("--" and a leading "-" for a
 * short flag are accepted too: "port", "--port", "-p"), or NULL. */
const dfws_option_t *dfws_option_find(const char *name);

/* The field of `o` in `cli`. */
static inline void *dfws_option_field(const dfws_cli_t *cli, const dfws_option_t *o)
{
    return (char *)cli + o->offset;
}

/* Whether `o` takes a value on the command line (-e SPEC does, --reload not). */
int dfws_option_takes_value(const dfws_option_t *o);

/* The dict key of `o` written into buf ("websocket_timeout"). */
const char *dfws_option_key(const dfws_option_t *o, char *buf, size_t len);

/* --help (grouped by section) and --help-markdown (docs/cli.md's tables). */
void dfws_options_help(FILE *out);
void dfws_options_markdown(FILE *out);

#endif
