# `sealwal demo` (included by tests/CMakeLists.txt).
#   demo_cli_test     the whole demo exits 0 and prints its key lines (the
#                     rotation's steps in order, the crash verified, the
#                     summary), --keep leaves a store `store inspect` opens,
#                     --help and usage errors
sealwal_test(demo_cli_test TIMEOUT 300)
