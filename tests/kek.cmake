# The KEK sources' tests (included by tests/CMakeLists.txt).
#   kek_pkcs11_test   a real SoftHSM2 token, initialised in a temp dir
#                     (SOFTHSM2_CONF): wrap/unwrap, wrong PIN, missing token
#                     or key, another aad, damaged bytes, the spec subset,
#                     sources one after another (C_Initialize/C_Finalize);
#                     skipped when /usr/lib/softhsm/libsofthsm2.so is missing
sealwal_test(kek_pkcs11_test DEPS sealwal::kek)
#   kek_command_test  the plugin protocol, the command source against the
#                     reference plugin and plugins that fail, hang, flood,
#                     answer garbage or lie; the key file's KEK binding;
#                     the C API opening a store through it
if(TARGET sealwal_example_kms_plugin)
  sealwal_test(kek_command_test DEPS sealwal::kek sealwal::c)
  target_compile_definitions(kek_command_test PRIVATE
    SEALWAL_EXAMPLE_KMS_PLUGIN="$<TARGET_FILE:sealwal_example_kms_plugin>")
  add_dependencies(kek_command_test sealwal_example_kms_plugin)
endif()
#   kek_cli_test      `key init --kek`, `key rotate-kek --kek` between an
#                     unlock key, a SoftHSM2 token and the reference plugin;
#                     wrong PIN, missing token, failing/hanging/lying plugins
#                     (exit 2, files byte-identical); a store's backup and
#                     restore through a plugin
if(TARGET sealwal_example_kms_plugin)
  sealwal_test(kek_cli_test)
  target_compile_definitions(kek_cli_test PRIVATE
    SEALWAL_EXAMPLE_KMS_PLUGIN="$<TARGET_FILE:sealwal_example_kms_plugin>")
  add_dependencies(kek_cli_test sealwal_example_kms_plugin)
endif()
