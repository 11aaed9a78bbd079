// The PKCS#11 source's tests land with it (sealwal/kek/pkcs11_source.cc).
#include "gtest/gtest.h"
