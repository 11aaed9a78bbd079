# Fuzz targets for snap/ (included by fuzz/CMakeLists.txt).
#   snap_file_fuzzer    a .snap file: snappb/raftpb decoding (checked against
#                       protobuf's own parser), StreamRef, and Snapshotter::Load
#                       over it, plaintext and encrypted
#   snap_stream_fuzzer  a .snap.stream file: header, layout and every chunk
#                       through StreamReader (plaintext and encrypted)
sealwal_fuzzer(snap_file_fuzzer DEPS sealwal::snap sealwal::env)
sealwal_fuzzer(snap_stream_fuzzer DEPS sealwal::snap sealwal::env)
