#ifndef KFLOW_FUZZ_DRIVER_H
#define KFLOW_FUZZ_DRIVER_H

// SwiftPM links every executable with `main` aliased to `<module>_main`, so libFuzzer's own main is never
// used: each target's `<module>_main` calls this, which hands the command line to libFuzzer's driver with
// the target's LLVMFuzzerTestOneInput.
int kflow_fuzz_run(int argc, char **argv);

#endif
