# The KEK sources' tests (included by tests/CMakeLists.txt).
#   kek_pkcs11_test   a real SoftHSM2 token, initialised in a temp dir
#                     (SOFTHSM2_CONF): wrap/unwrap, wrong PIN, missing token
#                     or key, another aad, damaged bytes, the spec subset,
#                     sources one after another (C_Initialize/C_Finalize);
#                     skipped when /usr/lib/softhsm/libsofthsm2.so is missing
sealwal_test(kek_pkcs11_test DEPS sealwal::kek)
