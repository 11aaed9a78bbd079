# snap/'s tests (included by tests/CMakeLists.txt).
#   snap_format_test        names, header/ref/layout bytes, HKDF (RFC 5869), nonces
#   snap_stream_test        stream round trips, chunk i, tamper: every byte,
#                           truncation, dropped/swapped/spliced chunks
#   snap_snapshotter_test   Save/Load/LoadNewestAvailable/Purge, .broken, key
#                           problems, crash at every write step (fault injection)
#   snap_fixture_test       etcd's fixtures load as their manifests say; etcd's
#                           driver reads what we write (check-dir, dump)
#   snap_cli_test           `sealwal snap` contract; SIGKILLed stream saves
#   snap_rss_test           peak RSS of a streamed save/load (snap_rss_harness)
#   temp_file_test          temp files never opened through a planted symlink
set(_snap_deps sealwal::snap sealwal::encryption sealwal::env sealwal::base sealwal::proto
    PkgConfig::XXHASH sealwal_fault_injection)
foreach(t snap_format_test snap_stream_test snap_snapshotter_test snap_fixture_test snap_cli_test
          snap_rss_test temp_file_test)
  sealwal_test(${t} DEPS ${_snap_deps})
endforeach()

# The RSS harness: a plain executable (no gtest) measuring its own peak RSS
# with getrusage while it writes or reads a streamed snapshot of any size.
add_executable(snap_rss_harness snap_rss_harness.cc)
target_link_libraries(snap_rss_harness PRIVATE ${_snap_deps})
sealwal_warnings(snap_rss_harness)
add_dependencies(snap_rss_test snap_rss_harness)
target_compile_definitions(snap_rss_test PRIVATE
  SEALWAL_SNAP_RSS_HARNESS="$<TARGET_FILE:snap_rss_harness>")
