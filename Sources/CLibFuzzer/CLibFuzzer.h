#ifndef NIMBUS_CLIBFUZZER_H
#define NIMBUS_CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's driver (compiler-rt's FuzzerInterface.h), linked in by -sanitize=fuzzer.
 * nimbus-fuzz calls it from its own main because SwiftPM links every executable with
 * `--defsym main=<module>_main`, so libFuzzer's main cannot be the entry point.
 * Only referenced when nimbus-fuzz is compiled with -D NIMBUS_LIBFUZZER. */
int LLVMFuzzerRunDriver(int *argc, char ***argv,
                        int (*UserCb)(const uint8_t *Data, size_t Size));

#endif
