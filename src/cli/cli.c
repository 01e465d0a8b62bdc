/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"

#define MAX_DEPTH 8
#define MAX_FLAGS 64

typedef struct flag_val {
    const mr_flag *def;
    bool changed;
    char *str;       /* STRING/BOOL value (owned) */
    char **list;     /* STRINGS values (owned) */
    size_t count;
} flag_val;

struct mr_cli {
    const mr_cmd *path[MAX_DEPTH];
    size_t depth;
    flag_val flags[MAX_FLAGS];
    size_t nflags;
    char cmd_path[256];
    bool help;
};

static const mr_flag help_flag = {"help", 'h', MR_FLAG_BOOL, "false", NULL};

/* ---------------------------------------------------------------------------------------- */
/* flag table of a command path                                                               */

static MR_RESULT add_flag(mr_cli *cli, const mr_flag *f)
{
    for (size_t i = 0; i < cli->nflags; i++)
        if (strcmp(cli->flags[i].def->name, f->name) == 0)
            return MR_SUCCESS; /* a local flag shadows an inherited one of the same name */
    MR_ENSURE(cli->nflags < MAX_FLAGS, MR_ERR_INTERNAL, "too many flags");
    cli->flags[cli->nflags++] = (flag_val){.def = f};
    return MR_SUCCESS;
}

static MR_RESULT collect_flags(mr_cli *cli)
{
    const mr_cmd *leaf = cli->path[cli->depth - 1];
    cli->nflags = 0;
    for (const mr_flag *f = leaf->flags; f != NULL && f->name != NULL; f++)
        MR_GUARD(add_flag(cli, f));
    for (size_t d = cli->depth; d-- > 0;)
        for (const mr_flag *f = cli->path[d]->persistent_flags; f != NULL && f->name != NULL; f++)
            MR_GUARD(add_flag(cli, f));
    return add_flag(cli, &help_flag);
}

static flag_val *find_long(mr_cli *cli, const char *name, size_t len)
{
    for (size_t i = 0; i < cli->nflags; i++)
        if (strlen(cli->flags[i].def->name) == len &&
            strncmp(cli->flags[i].def->name, name, len) == 0)
            return &cli->flags[i];
    return NULL;
}

static flag_val *find_short(mr_cli *cli, char c)
{
    for (size_t i = 0; i < cli->nflags; i++)
        if (cli->flags[i].def->shorthand == c)
            return &cli->flags[i];
    return NULL;
}

static const flag_val *lookup(const mr_cli *cli, const char *name)
{
    for (size_t i = 0; i < cli->nflags; i++)
        if (strcmp(cli->flags[i].def->name, name) == 0)
            return &cli->flags[i];
    fprintf(stderr, "internal error: unknown flag %s\n", name);
    abort();
}

/* ---------------------------------------------------------------------------------------- */
/* setting values                                                                             */

static MR_RESULT parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < MR_ARRAY_LEN(yes); i++) {
        if (strcmp(v, yes[i]) == 0) {
            *out = true;
            return MR_SUCCESS;
        }
        if (strcmp(v, no[i]) == 0) {
            *out = false;
            return MR_SUCCESS;
        }
    }
    MR_BAIL(MR_ERR_USAGE, "strconv.ParseBool: parsing \"%s\": invalid syntax", v);
}

static MR_RESULT append_list(flag_val *fv, const char *v)
{
    /* pflag's string slices split on commas (CSV), and repeated flags append. */
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char **nl = mr_realloc(fv->list, (fv->count + 1) * sizeof(char *));
        MR_ENSURE_ALLOC(nl);
        fv->list = nl;
        fv->list[fv->count] = mr_strndup(p, n);
        MR_ENSURE_ALLOC(fv->list[fv->count]);
        fv->count++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return MR_SUCCESS;
}

static void clear_value(flag_val *fv)
{
    mr_free(fv->str);
    fv->str = NULL;
    for (size_t i = 0; i < fv->count; i++)
        mr_free(fv->list[i]);
    mr_free(fv->list);
    fv->list = NULL;
    fv->count = 0;
}

static MR_RESULT set_value(flag_val *fv, const char *v, const char *spelled)
{
    if (fv->def->type == MR_FLAG_BOOL) {
        bool b;
        if (!mr_ok(parse_bool(v, &b))) {
            mr_error_prefix("invalid argument \"%s\" for \"%s\" flag", v, spelled);
            return MR_FAILURE;
        }
        v = b ? "true" : "false";
    }
    if (fv->def->type == MR_FLAG_STRINGS) {
        if (!fv->changed)
            clear_value(fv); /* the first explicit value replaces the default */
        fv->changed = true;
        return append_list(fv, v);
    }
    mr_free(fv->str);
    fv->str = mr_strdup(v);
    MR_ENSURE_ALLOC(fv->str);
    fv->changed = true;
    return MR_SUCCESS;
}

/* Parses one flag argument at argv[*i]; may consume argv[*i + 1]. */
static MR_RESULT parse_flag(mr_cli *cli, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    char spelled[96];
    if (a[1] == '-') {
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        flag_val *fv = find_long(cli, name, nlen);
        MR_ENSURE(fv != NULL, MR_ERR_USAGE, "unknown flag: --%.*s", (int)nlen, name);
        (void)snprintf(spelled, sizeof(spelled), "--%s", fv->def->name);
        if (eq != NULL)
            return set_value(fv, eq + 1, spelled);
        if (fv->def->type == MR_FLAG_BOOL)
            return set_value(fv, "true", spelled);
        MR_ENSURE(*i + 1 < argc, MR_ERR_USAGE, "flag needs an argument: --%s", fv->def->name);
        return set_value(fv, argv[++*i], spelled);
    }
    /* shorthand group: -ab, -xvalue, -x value, -x=value */
    for (const char *p = a + 1; *p != '\0'; p++) {
        flag_val *fv = find_short(cli, *p);
        MR_ENSURE(fv != NULL, MR_ERR_USAGE, "unknown shorthand flag: '%c' in %s", *p, a);
        (void)snprintf(spelled, sizeof(spelled), "-%c", *p);
        if (p[1] == '=')
            return set_value(fv, p + 2, spelled);
        if (fv->def->type == MR_FLAG_BOOL) {
            MR_GUARD(set_value(fv, "true", spelled));
            continue;
        }
        if (p[1] != '\0')
            return set_value(fv, p + 1, spelled);
        MR_ENSURE(*i + 1 < argc, MR_ERR_USAGE, "flag needs an argument: '%c' in %s", *p, a);
        return set_value(fv, argv[++*i], spelled);
    }
    return MR_SUCCESS;
}

static MR_RESULT set_defaults(mr_cli *cli)
{
    for (size_t i = 0; i < cli->nflags; i++) {
        flag_val *fv = &cli->flags[i];
        if (fv->def->type == MR_FLAG_STRINGS) {
            if (fv->def->def != NULL && fv->def->def[0] != '\0')
                MR_GUARD(append_list(fv, fv->def->def));
        } else {
            const char *d = fv->def->def != NULL ? fv->def->def : "";
            if (fv->def->type == MR_FLAG_BOOL && d[0] == '\0')
                d = "false";
            fv->str = mr_strdup(d);
            MR_ENSURE_ALLOC(fv->str);
        }
    }
    return MR_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* finding the command                                                                        */

static const mr_cmd *find_sub(const mr_cmd *c, const char *name)
{
    for (const mr_cmd *const *s = c->subs; s != NULL && *s != NULL; s++)
        if (strcmp((*s)->name, name) == 0)
            return *s;
    return NULL;
}

static bool takes_value(mr_cli *cli, const char *a)
{
    if (a[1] == '-') {
        const char *name = a + 2;
        if (strchr(name, '=') != NULL)
            return false;
        flag_val *fv = find_long(cli, name, strlen(name));
        return fv != NULL && fv->def->type != MR_FLAG_BOOL;
    }
    size_t n = strlen(a);
    if (n != 2)
        return false;
    flag_val *fv = find_short(cli, a[1]);
    return fv != NULL && fv->def->type != MR_FLAG_BOOL;
}

static void build_path_string(mr_cli *cli)
{
    size_t off = 0;
    cli->cmd_path[0] = '\0';
    for (size_t d = 0; d < cli->depth; d++) {
        int n = snprintf(cli->cmd_path + off, sizeof(cli->cmd_path) - off, "%s%s",
                         d ? " " : "", cli->path[d]->name);
        if (n < 0 || (size_t)n >= sizeof(cli->cmd_path) - off)
            break;
        off += (size_t)n;
    }
}

/* Walks the arguments, descending into subcommands named before the first positional. */
static MR_RESULT find_command(mr_cli *cli, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        MR_GUARD(collect_flags(cli));
        if (strcmp(a, "--") == 0)
            break;
        if (a[0] == '-' && a[1] != '\0') {
            if (takes_value(cli, a))
                i++;
            continue;
        }
        const mr_cmd *sub = find_sub(cli->path[cli->depth - 1], a);
        if (sub == NULL)
            break;
        MR_ENSURE(cli->depth < MAX_DEPTH, MR_ERR_INTERNAL, "commands nested too deeply");
        cli->path[cli->depth++] = sub;
    }
    build_path_string(cli);
    return collect_flags(cli);
}

/* ---------------------------------------------------------------------------------------- */
/* help                                                                                       */

static bool has_subs(const mr_cmd *c) { return c->subs != NULL && c->subs[0] != NULL; }

static void flag_lines(const mr_flag *const *flags, size_t n, FILE *f)
{
    char lines[MAX_FLAGS][160];
    size_t sidx[MAX_FLAGS];
    size_t maxlen = 0;
    for (size_t i = 0; i < n && i < MAX_FLAGS; i++) {
        const mr_flag *fl = flags[i];
        const char *type = fl->type == MR_FLAG_STRING ? " string"
                           : fl->type == MR_FLAG_STRINGS ? " strings" : "";
        int k;
        if (fl->shorthand)
            k = snprintf(lines[i], sizeof(lines[i]), "  -%c, --%s%s", fl->shorthand, fl->name, type);
        else
            k = snprintf(lines[i], sizeof(lines[i]), "      --%s%s", fl->name, type);
        sidx[i] = k < 0 ? 0 : (size_t)k;
        if (sidx[i] + 1 > maxlen)
            maxlen = sidx[i] + 1;
    }
    for (size_t i = 0; i < n && i < MAX_FLAGS; i++) {
        const mr_flag *fl = flags[i];
        fprintf(f, "%s %*s %s", lines[i], (int)(maxlen - sidx[i]), "",
                fl->usage != NULL ? fl->usage : "");
        const char *d = fl->def != NULL ? fl->def : "";
        if (fl->type == MR_FLAG_STRING && d[0] != '\0')
            fprintf(f, " (default \"%s\")", d);
        else if (fl->type == MR_FLAG_STRINGS && d[0] != '\0')
            fprintf(f, " (default [%s])", d);
        else if (fl->type == MR_FLAG_BOOL && d[0] != '\0' && strcmp(d, "false") != 0)
            fprintf(f, " (default %s)", d);
        fputc('\n', f);
    }
}

static void path_string(const mr_cmd *const *path, size_t depth, char *out, size_t size)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t d = 0; d < depth; d++) {
        int n = snprintf(out + off, size - off, "%s%s", d ? " " : "", path[d]->name);
        if (n < 0 || (size_t)n >= size - off)
            return;
        off += (size_t)n;
    }
}

static void write_usage(const mr_cmd *const *path, size_t depth, FILE *f)
{
    const mr_cmd *c = path[depth - 1];
    char p[256];
    path_string(path, depth, p, sizeof(p));
    fprintf(f, "Usage:");
    if (c->run != NULL)
        fprintf(f, "\n  %s%s%s", p, c->args_use ? " " : "", c->args_use ? c->args_use : "");
    if (c->run != NULL) /* cobra adds "[flags]" when there are flags; --help always is */
        fprintf(f, " [flags]");
    if (has_subs(c))
        fprintf(f, "\n  %s [command]", p);
    fputc('\n', f);
    if (c->example != NULL)
        fprintf(f, "\nExamples:\n%s\n", c->example);
    if (has_subs(c)) {
        size_t pad = 11;
        for (const mr_cmd *const *s = c->subs; *s != NULL; s++)
            if (strlen((*s)->name) > pad)
                pad = strlen((*s)->name);
        fprintf(f, "\nAvailable Commands:\n");
        for (const mr_cmd *const *s = c->subs; *s != NULL; s++)
            fprintf(f, "  %-*s %s\n", (int)pad, (*s)->name, (*s)->short_help);
        if (depth == 1)
            fprintf(f, "  %-*s %s\n", (int)pad, "help", "Help about any command");
    }
    const mr_flag *local[MAX_FLAGS];
    const mr_flag *inherited[MAX_FLAGS];
    size_t nl = 0, ni = 0;
    for (const mr_flag *fl = c->flags; fl != NULL && fl->name != NULL && nl < MAX_FLAGS - 1; fl++)
        local[nl++] = fl;
    for (const mr_flag *fl = c->persistent_flags; fl != NULL && fl->name != NULL && nl < MAX_FLAGS - 1; fl++)
        local[nl++] = fl;
    char help_usage[128];
    (void)snprintf(help_usage, sizeof(help_usage), "help for %s", c->name);
    const mr_flag hf = {"help", 'h', MR_FLAG_BOOL, "false", help_usage};
    local[nl++] = &hf;
    for (size_t d = depth - 1; d-- > 0;)
        for (const mr_flag *fl = path[d]->persistent_flags; fl != NULL && fl->name != NULL && ni < MAX_FLAGS; fl++)
            inherited[ni++] = fl;
    fprintf(f, "\nFlags:\n");
    flag_lines(local, nl, f);
    if (ni > 0) {
        fprintf(f, "\nGlobal Flags:\n");
        flag_lines(inherited, ni, f);
    }
    if (has_subs(c))
        fprintf(f, "\nUse \"%s [command] --help\" for more information about a command.\n", p);
}

void mr_cli_write_help(const mr_cmd *root, const mr_cmd *const *path, size_t depth, FILE *f)
{
    const mr_cmd *const rootpath[1] = {root};
    if (path == NULL || depth == 0) {
        path = rootpath;
        depth = 1;
    }
    const mr_cmd *c = path[depth - 1];
    fprintf(f, "%s\n\n", c->long_help != NULL ? c->long_help : c->short_help);
    write_usage(path, depth, f);
}

/* ---------------------------------------------------------------------------------------- */
/* running                                                                                    */

static void free_cli(mr_cli *cli)
{
    for (size_t i = 0; i < cli->nflags; i++)
        clear_value(&cli->flags[i]);
}

static MR_RESULT check_args(const mr_cmd *c, int n)
{
    if (c->max_args == 0 && n > 0 && has_subs(c))
        return MR_SUCCESS; /* reported as unknown command by the caller */
    if (c->min_args == c->max_args)
        MR_ENSURE(n == c->min_args, MR_ERR_USAGE, "accepts %d arg(s), received %d", c->min_args, n);
    if (c->max_args < 0)
        MR_ENSURE(n >= c->min_args, MR_ERR_USAGE, "requires at least %d arg(s), only received %d",
                  c->min_args, n);
    MR_ENSURE(n >= c->min_args && (c->max_args < 0 || n <= c->max_args), MR_ERR_USAGE,
              "accepts between %d and %d arg(s), received %d", c->min_args, c->max_args, n);
    return MR_SUCCESS;
}

/* Separates flags from positionals for the selected command; positionals are collected in
 * order into pos (which has room for argc entries). */
static MR_RESULT parse_all(mr_cli *cli, int argc, char **argv, char **pos, int *npos)
{
    size_t depth_seen = 1;
    bool flags_done = false;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!flags_done && strcmp(a, "--") == 0) {
            flags_done = true;
            continue;
        }
        if (!flags_done && a[0] == '-' && a[1] != '\0') {
            MR_GUARD(parse_flag(cli, argc, argv, &i));
            continue;
        }
        if (!flags_done && *npos == 0 && depth_seen < cli->depth &&
            strcmp(a, cli->path[depth_seen]->name) == 0) {
            depth_seen++;
            continue;
        }
        pos[(*npos)++] = argv[i];
    }
    return MR_SUCCESS;
}

static int fail_usage(mr_cli *cli)
{
    fprintf(stderr, "Error: %s\n", mr_error_get()->msg);
    write_usage(cli->path, cli->depth, stdout);
    fputc('\n', stdout);
    return 1;
}

int mr_cli_main(const mr_cmd *root, int argc, char **argv)
{
    mr_cli cli;
    memset(&cli, 0, sizeof(cli));
    cli.path[0] = root;
    cli.depth = 1;
    char **pos = mr_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, rc = 1;
    if (pos == NULL) {
        fprintf(stderr, "Error: out of memory\n");
        return 1;
    }
    if (!mr_ok(find_command(&cli, argc, argv)) || !mr_ok(set_defaults(&cli))) {
        fprintf(stderr, "Error: %s\n", mr_error_get()->msg);
        goto out;
    }
    if (!mr_ok(parse_all(&cli, argc, argv, pos, &npos))) {
        rc = fail_usage(&cli);
        goto out;
    }
    const mr_cmd *c = cli.path[cli.depth - 1];
    /* `help [command...]` at the root */
    if (cli.depth == 1 && npos > 0 && strcmp(pos[0], "help") == 0) {
        const mr_cmd *path[MAX_DEPTH] = {root};
        size_t depth = 1;
        for (int k = 1; k < npos && depth < MAX_DEPTH; k++) {
            const mr_cmd *s = find_sub(path[depth - 1], pos[k]);
            if (s == NULL)
                break;
            path[depth++] = s;
        }
        mr_cli_write_help(root, path, depth, stdout);
        rc = 0;
        goto out;
    }
    if (mr_cli_bool(&cli, "help") || (c->run == NULL && npos == 0)) {
        mr_cli_write_help(root, cli.path, cli.depth, stdout);
        rc = 0;
        goto out;
    }
    if (c->run == NULL || (npos > 0 && has_subs(c) && c->max_args == 0)) {
        fprintf(stderr, "Error: unknown command \"%s\" for \"%s\"\n", pos[0], cli.cmd_path);
        fprintf(stderr, "Run '%s --help' for usage.\n", cli.cmd_path);
        goto out;
    }
    if (!mr_ok(check_args(c, npos))) {
        rc = fail_usage(&cli);
        goto out;
    }
    mr_error_clear();
    if (mr_ok(c->run(&cli, npos, pos))) {
        rc = 0;
    } else {
        fprintf(stderr, "Error: %s\n", mr_error_get()->msg);
        rc = mr_errcat_exit(mr_error_get()->cat);
        if (rc == 0)
            rc = 1;
    }
out:
    fflush(stdout);
    free_cli(&cli);
    mr_free(pos);
    return rc;
}

const char *mr_cli_str(const mr_cli *cli, const char *name) { return lookup(cli, name)->str; }

bool mr_cli_bool(const mr_cli *cli, const char *name)
{
    const char *v = lookup(cli, name)->str;
    return v != NULL && strcmp(v, "true") == 0;
}

const char *const *mr_cli_strings(const mr_cli *cli, const char *name, size_t *count)
{
    const flag_val *fv = lookup(cli, name);
    *count = fv->count;
    return (const char *const *)fv->list;
}

bool mr_cli_changed(const mr_cli *cli, const char *name) { return lookup(cli, name)->changed; }

/* ---------------------------------------------------------------------------------------- */
/* man page and completion                                                                    */

static void man_escape(const char *s, FILE *f)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
}

static void man_flags(const mr_flag *flags, FILE *f)
{
    for (const mr_flag *fl = flags; fl != NULL && fl->name != NULL; fl++) {
        fputs(".TP\n\\fB", f);
        if (fl->shorthand)
            fprintf(f, "\\-%c\\fR, \\fB", fl->shorthand);
        fputs("\\-\\-", f);
        man_escape(fl->name, f);
        fputs("\\fR", f);
        if (fl->type != MR_FLAG_BOOL)
            fputs(fl->type == MR_FLAG_STRING ? " \\fIstring\\fR" : " \\fIstrings\\fR", f);
        fputc('\n', f);
        man_escape(fl->usage, f);
        if (fl->def != NULL && fl->def[0] != '\0' && strcmp(fl->def, "false") != 0) {
            fputs(" (default: ", f);
            man_escape(fl->def, f);
            fputc(')', f);
        }
        fputc('\n', f);
    }
}

static void man_cmd(const mr_cmd *c, const char *prefix, FILE *f)
{
    char p[256];
    (void)snprintf(p, sizeof(p), "%s%s%s", prefix, prefix[0] ? " " : "", c->name);
    if (c->run != NULL && prefix[0] != '\0') {
        fputs(".SS \"", f);
        man_escape(p, f);
        if (c->args_use != NULL) {
            fputc(' ', f);
            man_escape(c->args_use, f);
        }
        fputs("\"\n", f);
        man_escape(c->long_help != NULL ? c->long_help : c->short_help, f);
        fputc('\n', f);
        man_flags(c->flags, f);
        man_flags(c->persistent_flags, f);
    }
    for (const mr_cmd *const *s = c->subs; s != NULL && *s != NULL; s++)
        man_cmd(*s, p, f);
}

void mr_cli_write_man(const mr_cmd *root, const char *version, FILE *f)
{
    fprintf(f, ".TH %s 1 \"\" \"%s\" \"User Commands\"\n.SH NAME\n", root->name, version);
    man_escape(root->name, f);
    fputs(" \\- ", f);
    man_escape(root->short_help, f);
    fprintf(f, "\n.SH SYNOPSIS\n\\fB%s\\fR [\\fIcommand\\fR] [\\fIflags\\fR]\n.SH DESCRIPTION\n",
            root->name);
    man_escape(root->long_help != NULL ? root->long_help : root->short_help, f);
    fputs("\n.SH GLOBAL FLAGS\n", f);
    man_flags(root->persistent_flags, f);
    fputs(".SH COMMANDS\n", f);
    man_cmd(root, "", f);
    fputs(".SH EXIT STATUS\n0 on success, 1 on any error.\n", f);
}

static void bash_words(const mr_cmd *c, const mr_flag *inherited_extra, FILE *f)
{
    (void)inherited_extra;
    for (const mr_cmd *const *s = c->subs; s != NULL && *s != NULL; s++)
        fprintf(f, " %s", (*s)->name);
    for (const mr_flag *fl = c->flags; fl != NULL && fl->name != NULL; fl++)
        fprintf(f, " --%s", fl->name);
    for (const mr_flag *fl = c->persistent_flags; fl != NULL && fl->name != NULL; fl++)
        fprintf(f, " --%s", fl->name);
    fputs(" --help", f);
}

static void bash_cases(const mr_cmd *c, const char *key, const mr_flag *globals, FILE *f)
{
    fprintf(f, "        \"%s\") words=\"", key);
    bash_words(c, NULL, f);
    for (const mr_flag *fl = globals; fl != NULL && fl->name != NULL && c->persistent_flags != globals; fl++)
        fprintf(f, " --%s", fl->name);
    fputs("\" ;;\n", f);
    for (const mr_cmd *const *s = c->subs; s != NULL && *s != NULL; s++) {
        char k[256];
        (void)snprintf(k, sizeof(k), "%s%s%s", key, key[0] ? "_" : "", (*s)->name);
        bash_cases(*s, k, globals, f);
    }
}

void mr_cli_write_bash_completion(const mr_cmd *root, FILE *f)
{
    fprintf(f, "# bash completion for %s (generated from its command table)\n", root->name);
    fprintf(f, "_%s_complete() {\n", root->name);
    fputs("    local cur key=\"\" w words i\n    cur=\"${COMP_WORDS[COMP_CWORD]}\"\n", f);
    fputs("    for ((i = 1; i < COMP_CWORD; i++)); do\n        w=\"${COMP_WORDS[i]}\"\n", f);
    fputs("        [[ \"$w\" == -* ]] && continue\n", f);
    fputs("        if [[ -z \"$key\" ]]; then key=\"$w\"; else key=\"${key}_$w\"; fi\n    done\n", f);
    fputs("    case \"$key\" in\n", f);
    bash_cases(root, "", root->persistent_flags, f);
    fputs("        *) words=\"\" ;;\n    esac\n", f);
    fputs("    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n", f);
    fputs("    [[ ${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- \"$cur\"))\n}\n", f);
    fprintf(f, "complete -F _%s_complete %s\n", root->name, root->name);
}
