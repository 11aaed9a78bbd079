# The pem component's tests (included by tests/CMakeLists.txt).
#   pem_key_file_test        unlock keys, PEM blocks, the key file format:
#                            round trips, every bit flipped / every truncation,
#                            wrong unlock keys, swarmkit and bare layouts
sealwal_test(pem_key_file_test DEPS sealwal::pem)
#   pem_key_read_writer_test KeyReadWriter: updates, KEK rotation, stale KEK
#                            updates, wrong keys change no byte, locking, a
#                            crash at every write step (fault-injection FS)
sealwal_test(pem_key_read_writer_test DEPS sealwal::pem sealwal::env)
