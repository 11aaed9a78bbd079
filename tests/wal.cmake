# The WAL's own tests (included by tests/CMakeLists.txt).
#   wal_test           API semantics: round trip, overrides, sync policy, cuts,
#                      locks, error classes, sticky failures, Repair, Create.
#   wal_fault_test     power loss / torn writes / ENOSPC at every write step of
#                      a scripted workload (FaultInjectionFileSystem).
#   wal_byteflip_test  every byte of a small WAL flipped: reported or harmless.
#   wal_zero_sector_test  512 zero bytes at every offset of a last segment: a
#                      torn tail only when no valid records follow.
#   wal_pipeline_test  Submit: same bytes as Save, in-order completions, group
#                      commit, depth, sticky I/O errors, a crash at every step.
#   wal_record_reader_test  RecordReader: positions; EOF, torn tail, CRC
#                      mismatch, broken chain and I/O error told apart.
foreach(t wal_test wal_fault_test wal_zero_sector_test wal_durability_test
          wal_record_reader_test wal_pipeline_test)
  sealwal_test(${t} DEPS sealwal::wal sealwal::env sealwal::base sealwal::proto
    sealwal_fault_injection)
endforeach()
# Under the sanitizers each byte-flip case takes 150-300 s on a busy 2-core
# machine (one timed out at the default 300 s in CI).
sealwal_test(wal_byteflip_test DEPS sealwal::wal sealwal::env sealwal::base sealwal::proto
  sealwal_fault_injection TIMEOUT 900)
