# The benchmark record's tools (scripts/bench_*.py, plot.py) on a tiny
# workload against etcd's WAL. Needs python3 and the etcd driver; not in
# sanitizer or fuzz builds (timing tools, not library code).
find_program(SEALWAL_PYTHON3 python3)
if(SEALWAL_PYTHON3 AND SEALWAL_PEER_BIN AND EXISTS "${SEALWAL_PEER_BIN}"
   AND NOT SEALWAL_SANITIZE AND NOT SEALWAL_BUILD_FUZZ)
  add_test(NAME BenchRecord.Smoke
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bench/record_smoke.sh $<TARGET_FILE:sealwal>
            ${SEALWAL_PEER_BIN} ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/bench-record-smoke)
  set_tests_properties(BenchRecord.Smoke PROPERTIES TIMEOUT 300)
endif()
