# examples/ (included by tests/CMakeLists.txt): each example checks itself
# and exits 0 only when its checks pass; ctest also wants its last line.
if(TARGET sealwal_example_raft_node)
  #   Example.RaftNode   open, bootstrap, save/apply/snapshot/GC with a DEK
  #                      rotation, close, reopen: the state machine rebuilt
  add_test(NAME Example.RaftNode
    COMMAND bash -c "set -o pipefail; \"$0\" | tee /dev/stderr | tail -n 1 | grep -q '^ok: state machine rebuilt'"
            $<TARGET_FILE:sealwal_example_raft_node>)
  set_tests_properties(Example.RaftNode PROPERTIES TIMEOUT 120)
endif()
