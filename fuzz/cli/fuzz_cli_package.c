/* SPDX-License-Identifier: Apache-2.0 */
/* Target: the package-info parsers (cli/cmd_package_info.c): ELF section lookup and SIGSTRUCT
 * decoding over arbitrary files. */
#include <stdint.h>

#include "cli/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_cli_pkg_props p;
    mr_slice sec;
    MR_IGNORE(mr_cli_sigstruct_parse(MR_SLICE(data, size), &p));
    static const char *const names[] = {".oeinfo", ".note.sgxmeta"};
    for (size_t i = 0; i < MR_ARRAY_LEN(names); i++)
        if (mr_ok(mr_cli_elf_section(MR_SLICE(data, size), names[i], &sec)))
            MR_IGNORE(mr_cli_sigstruct_parse(sec, &p));
    return 0;
}
