// GoogleTest matchers for absl::Status / StatusOr. Abseil 20220623 ships no
// status_matchers.h, so this is the project's one copy.
//
//   EXPECT_THAT(s, IsOk());
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss, HasSubstr("crc")));
//   ASSERT_OK_AND_ASSIGN(auto wal, Wal::Open(...));
#ifndef SEALWAL_TESTS_TESTING_STATUS_MATCHERS_H_
#define SEALWAL_TESTS_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sealwal::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::sealwal::testing::GetStatus(arg);
  if (!s.ok()) *result_listener << "status: " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code, "has code " + std::string(absl::StatusCodeToString(code))) {
  const absl::Status& s = ::sealwal::testing::GetStatus(arg);
  *result_listener << "status: " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has code " + std::string(absl::StatusCodeToString(code))) {
  const absl::Status& s = ::sealwal::testing::GetStatus(arg);
  *result_listener << "status: " << s;
  return s.code() == code &&
         ::testing::Matches(message_matcher)(std::string(s.message()));
}

}  // namespace sealwal::testing

#define SEALWAL_ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                       \
  ASSERT_TRUE(tmp.ok()) << tmp.status();                   \
  lhs = std::move(tmp).value()
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  SEALWAL_ASSERT_OK_AND_ASSIGN_IMPL_(SEALWAL_CONCAT_(sealwal_aoa_, __LINE__), lhs, expr)
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::sealwal::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::sealwal::testing::IsOk())

#ifndef SEALWAL_CONCAT_
#define SEALWAL_CONCAT_INNER_(a, b) a##b
#define SEALWAL_CONCAT_(a, b) SEALWAL_CONCAT_INNER_(a, b)
#endif

#endif  // SEALWAL_TESTS_TESTING_STATUS_MATCHERS_H_
