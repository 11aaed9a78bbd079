# Fuzz targets for kek/ (included by fuzz/CMakeLists.txt).
#   kek_plugin_answer_fuzzer  a KMS plugin's JSON answer (plugin_protocol.h)
sealwal_fuzzer(kek_plugin_answer_fuzzer DEPS sealwal::kek)
