// Status propagation macros. Abseil 20220623 ships no status_macros.h, so
// these are the project's one copy.
//
//   SEALWAL_RETURN_IF_ERROR(expr);             // returns expr's Status when not ok
//   SEALWAL_ASSIGN_OR_RETURN(auto x, expr);    // unwraps a StatusOr or returns
//
// Thread-safety: plain macros, no state.
#ifndef SEALWAL_BASE_STATUS_MACROS_H_
#define SEALWAL_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SEALWAL_CONCAT_INNER_(a, b) a##b
#define SEALWAL_CONCAT_(a, b) SEALWAL_CONCAT_INNER_(a, b)

#define SEALWAL_RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status sealwal_status_ = (expr);           \
    if (!sealwal_status_.ok()) return sealwal_status_; \
  } while (0)

#define SEALWAL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()

#define SEALWAL_ASSIGN_OR_RETURN(lhs, expr) \
  SEALWAL_ASSIGN_OR_RETURN_IMPL_(SEALWAL_CONCAT_(sealwal_sor_, __LINE__), lhs, expr)

#endif  // SEALWAL_BASE_STATUS_MACROS_H_
