# Fuzz targets for encryption/ (included by fuzz/CMakeLists.txt).
sealwal_fuzzer(encrypted_record_fuzzer DEPS sealwal::encryption)
