// A SoftHSM2 token of a test's own: the PKCS#11 tests' and the KEK CLI
// tests' real token (scripts/setup.sh installs softhsm2).
#ifndef SEALWAL_TESTS_TESTING_SOFTHSM_TOKEN_H_
#define SEALWAL_TESTS_TESTING_SOFTHSM_TOKEN_H_

#include <string>

#include "testing/test_util.h"

namespace sealwal::testing {

inline constexpr char kSoftHsmModule[] = "/usr/lib/softhsm/libsofthsm2.so";

// True when SoftHSM2's module is installed.
bool SoftHsmInstalled();

// Writes DIR/softhsm2.conf (tokens in DIR/tokens), points $SOFTHSM2_CONF at
// it and initialises a token `label` with user PIN `pin` (SO PIN 5678).
// SoftHSM2 reads $SOFTHSM2_CONF at C_Initialize, so a process sees this
// token once every source of an earlier one is gone. False, with the
// failure recorded in the test, when softhsm2-util fails.
bool InitSoftHsmToken(const TempDir& dir, const std::string& label, const std::string& pin);

}  // namespace sealwal::testing

#endif  // SEALWAL_TESTS_TESTING_SOFTHSM_TOKEN_H_
