#include "sealwal/keyrotator/key_rotator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sealwal::keyrotator {
namespace {

bool Contains(const std::vector<encryption::KeyId>& keys, encryption::KeyId k) {
  return std::find(keys.begin(), keys.end(), k) != keys.end();
}

Step MakeStep(StepKind kind, encryption::KeyId key = {}, uint64_t index = 0) {
  Step s;
  s.kind = kind;
  s.key = key;
  s.index = index;
  return s;
}

}  // namespace

const char* StepKindName(StepKind kind) {
  switch (kind) {
    case StepKind::kNone: return "none";
    case StepKind::kCreatePending: return "create-pending";
    case StepKind::kSwitchWriteKey: return "switch-write-key";
    case StepKind::kRequestSnapshot: return "request-snapshot";
    case StepKind::kReleaseOldFiles: return "release-old-files";
    case StepKind::kPromotePending: return "promote-pending";
    case StepKind::kForgetKey: return "forget-key";
  }
  return "unknown";
}

std::string Step::DebugString() const {
  std::string out = StepKindName(kind);
  if (key.value() != 0) absl::StrAppend(&out, " key ", encryption::FormatKeyId(key));
  if (kind == StepKind::kRequestSnapshot || kind == StepKind::kReleaseOldFiles) {
    absl::StrAppend(&out, " index ", index);
  }
  return out;
}

bool KeyRotator::RotationDue(const KeyStoreState& state) const {
  if (requested_ || state.rotation_requested) return true;
  if (state.current_encryptions >= policy_.max_encryptions) return true;
  if (policy_.max_age.has_value() && state.current_created.has_value() &&
      state.now - *state.current_created >= *policy_.max_age) {
    return true;
  }
  return false;
}

Step KeyRotator::Next(const KeyStoreState& state) {
  // A rotation under way is finished before anything else is decided.
  if (state.pending.has_value()) {
    const encryption::KeyId pending = *state.pending;
    if (state.wal_write_key != pending) return MakeStep(StepKind::kSwitchWriteKey, pending);
    if (state.snapshot_index < state.write_key_first_index) {
      const std::pair<uint32_t, uint64_t> ask(pending.value(), state.write_key_first_index);
      if (snapshot_asked_ == ask) return MakeStep(StepKind::kNone);  // waiting for it
      snapshot_asked_ = ask;
      return MakeStep(StepKind::kRequestSnapshot, {}, state.write_key_first_index);
    }
    // The old key may leave the key file only once no retained file needs
    // it: promoting first would strand files that recovery could still
    // open (an older snapshot to fall back to).
    if (state.current != pending && Contains(state.keys_in_use, state.current)) {
      return MakeStep(StepKind::kReleaseOldFiles, state.current, state.snapshot_index);
    }
    snapshot_asked_.reset();
    return MakeStep(StepKind::kPromotePending, pending);
  }
  for (encryption::KeyId held : state.keys_held) {
    if (held != state.current && !Contains(state.keys_in_use, held)) {
      return MakeStep(StepKind::kForgetKey, held);
    }
  }
  if (RotationDue(state)) {
    requested_ = false;  // consumed: a request made from now on queues again
    return MakeStep(StepKind::kCreatePending);
  }
  return MakeStep(StepKind::kNone);
}

}  // namespace sealwal::keyrotator
