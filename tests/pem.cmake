# The pem component's tests (included by tests/CMakeLists.txt).
#   pem_key_file_test        unlock keys, PEM blocks, the key file format:
#                            round trips, every bit flipped / every truncation,
#                            wrong unlock keys, swarmkit and bare layouts
sealwal_test(pem_key_file_test DEPS sealwal::pem)
#   pem_key_read_writer_test KeyReadWriter: updates, KEK rotation, stale KEK
#                            updates, wrong keys change no byte, locking, a
#                            crash at every write step (fault-injection FS)
sealwal_test(pem_key_read_writer_test DEPS sealwal::pem sealwal::env sealwal_fault_injection)
#   pem_crash_test           a child (pem_crash_harness) SIGKILLed before every
#                            file operation of KEK changes and header updates,
#                            and at random moments of an endless cycle
add_executable(pem_crash_harness pem_crash_harness.cc)
target_link_libraries(pem_crash_harness PRIVATE sealwal::pem sealwal::env)
sealwal_warnings(pem_crash_harness)
sealwal_test(pem_crash_test DEPS sealwal::base)
target_compile_definitions(pem_crash_test PRIVATE
  PEM_CRASH_HARNESS_BIN="$<TARGET_FILE:pem_crash_harness>")
add_dependencies(pem_crash_test pem_crash_harness)
#   key_cli_test             `sealwal key ...` and `wal --key-file` against the
#                            openssl command line (pkey -passin, genpkey imports)
sealwal_test(key_cli_test)
#   keyring_cli_test         one --key-file for `wal` and `snap` (raft-dek and
#                            raft-dek-pending), missing key exit 2 / tampering
#                            exit 1 alike, the persisted encryption counter
#                            (SIGKILL mid-run, 2^32 across processes)
sealwal_test(keyring_cli_test DEPS sealwal::pem sealwal::snap sealwal::env sealwal::encryption
  TIMEOUT 600)
