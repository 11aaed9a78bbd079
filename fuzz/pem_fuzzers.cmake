# Fuzz targets for pem/ (included by fuzz/CMakeLists.txt).
#   pem_key_file_fuzzer  PEM blocks, DEK headers, digest, DEK records, key
#   unlock_key_fuzzer    the SEALWAL-1- unlock key parser
sealwal_fuzzer(pem_key_file_fuzzer DEPS sealwal::pem)
sealwal_fuzzer(unlock_key_fuzzer DEPS sealwal::pem)
