// keyrotator::KeyRotator: when a rotation is due, the order of its steps,
// a crash between any two of them (a fresh rotator over the state read back
// from disk), requests queued while a rotation runs, and the snapshot index
// rule that swarmkit's PR #1766 got wrong.
#include "sealwal/keyrotator/key_rotator.h"

#include <vector>

#include "gtest/gtest.h"

namespace sealwal::keyrotator {
namespace {

using encryption::KeyId;

const KeyId kOld(0x11111111);
const KeyId kNew(0x22222222);

// A store that writes under kOld, everything it retains needs only kOld.
KeyStoreState Steady() {
  KeyStoreState s;
  s.current = kOld;
  s.wal_write_key = kOld;
  s.snapshot_index = 100;
  s.keys_in_use = {kOld};
  s.keys_held = {kOld};
  return s;
}

// Applies `step` to `s` the way the storage facade would, with the WAL's
// last index at `last_index` (so a switch cuts a segment starting there + 1).
void Apply(const Step& step, KeyStoreState* s, uint64_t last_index) {
  switch (step.kind) {
    case StepKind::kNone:
      break;
    case StepKind::kCreatePending:
      s->pending = kNew;
      s->rotation_requested = false;
      s->keys_held.push_back(kNew);
      break;
    case StepKind::kSwitchWriteKey:
      s->wal_write_key = step.key;
      s->write_key_first_index = last_index + 1;
      s->keys_in_use.push_back(step.key);
      break;
    case StepKind::kRequestSnapshot:
      break;  // the consensus layer answers later
    case StepKind::kReleaseOldFiles:
      std::erase(s->keys_in_use, step.key);
      break;
    case StepKind::kPromotePending:
      s->current = *s->pending;
      s->pending.reset();
      s->current_encryptions = 0;
      std::erase(s->keys_held, kOld);
      break;
    case StepKind::kForgetKey:
      std::erase(s->keys_held, step.key);
      break;
  }
}

TEST(KeyRotatorTest, NothingDueIsNone) {
  KeyRotator r;
  EXPECT_FALSE(r.RotationDue(Steady()));
  EXPECT_EQ(r.Next(Steady()).kind, StepKind::kNone);
}

TEST(KeyRotatorTest, CounterThresholdRunsTheWholeRotationInOrder) {
  KeyRotator r;  // 2^30 by default
  KeyStoreState s = Steady();
  s.current_encryptions = (uint64_t{1} << 30) - 1;
  EXPECT_EQ(r.Next(s).kind, StepKind::kNone);
  s.current_encryptions = uint64_t{1} << 30;
  ASSERT_TRUE(r.RotationDue(s));

  std::vector<StepKind> kinds;
  for (int i = 0; i < 20; ++i) {
    Step step = r.Next(s);
    if (step.kind == StepKind::kNone) {
      if (s.snapshot_index >= s.write_key_first_index) break;
      s.snapshot_index = 200;  // the consensus layer's snapshot arrives
      continue;
    }
    kinds.push_back(step.kind);
    if (step.kind == StepKind::kRequestSnapshot) {
      EXPECT_EQ(step.index, 151u);
    }
    if (step.kind == StepKind::kReleaseOldFiles) {
      EXPECT_EQ(step.key, kOld);
      EXPECT_EQ(step.index, 200u);
    }
    Apply(step, &s, /*last_index=*/150);
  }
  EXPECT_EQ(kinds, (std::vector<StepKind>{StepKind::kCreatePending, StepKind::kSwitchWriteKey,
                                          StepKind::kRequestSnapshot, StepKind::kReleaseOldFiles,
                                          StepKind::kPromotePending}));
  EXPECT_EQ(s.current, kNew);
  EXPECT_EQ(s.keys_held, std::vector<KeyId>{kNew});
  EXPECT_EQ(r.Next(s).kind, StepKind::kNone);
}

// swarmkit PR #1766: entries 101..150 were written under the old key, only
// up to 120 committed, when the switch happened. A snapshot at the commit
// index (or anywhere up to 150) still leaves old-key entries for recovery to
// read, so the rotation waits; a new leader overwriting 121..150 under the
// new key does not change that. Only a snapshot at or past the switch
// segment's first index (151) lets the old key go.
TEST(KeyRotatorTest, UncommittedOldKeyEntriesAboveTheSnapshotHoldTheOldKey) {
  KeyRotator r;
  r.RequestRotation();
  KeyStoreState s = Steady();
  Apply(r.Next(s), &s, 150);  // create pending
  Step sw = r.Next(s);
  ASSERT_EQ(sw.kind, StepKind::kSwitchWriteKey);
  Apply(sw, &s, 150);
  Step ask = r.Next(s);
  ASSERT_EQ(ask.kind, StepKind::kRequestSnapshot);
  EXPECT_EQ(ask.index, 151u);
  for (uint64_t snap : {120u, 149u, 150u}) {
    s.snapshot_index = snap;
    Step step = r.Next(s);
    EXPECT_EQ(step.kind, StepKind::kNone) << "snapshot at " << snap << ": " << step.DebugString();
  }
  s.snapshot_index = 151;
  EXPECT_EQ(r.Next(s).kind, StepKind::kReleaseOldFiles);
}

// After a crash at any point, a new process reads the state back and a
// fresh rotator continues with the same step (asking for the snapshot
// again, since the request died with the process).
TEST(KeyRotatorTest, FreshRotatorResumesAfterACrashBetweenAnyTwoSteps) {
  KeyRotator first;
  first.RequestRotation();
  KeyStoreState s = Steady();
  for (int i = 0; i < 10; ++i) {
    Step step = first.Next(s);
    if (step.kind == StepKind::kNone) {
      s.snapshot_index = 500;
      step = first.Next(s);
      if (step.kind == StepKind::kNone) break;
    }
    // A restarted process: only the durable state carries over.
    KeyRotator restarted;
    Step again = restarted.Next(s);
    if (step.kind != StepKind::kCreatePending) {
      EXPECT_EQ(again.kind, step.kind) << "after " << i << " steps";
      EXPECT_EQ(again.key, step.key);
      EXPECT_EQ(again.index, step.index);
    } else {
      // The request that started it was in memory only: a restarted
      // process has nothing to do (the key-file flag is the durable form).
      EXPECT_EQ(again.kind, StepKind::kNone);
    }
    Apply(step, &s, 300);
  }
  EXPECT_EQ(s.current, kNew);
  EXPECT_FALSE(s.pending.has_value());
}

TEST(KeyRotatorTest, RequestDuringARotationIsQueuedNotLost) {
  KeyRotator r;
  KeyStoreState s = Steady();
  s.rotation_requested = true;  // `sealwal store rotate`: the key-file flag
  Apply(r.Next(s), &s, 150);    // create pending (clears the flag)
  EXPECT_FALSE(s.rotation_requested);
  r.RequestRotation();  // a second request while the first runs
  Apply(r.Next(s), &s, 150);  // switch
  EXPECT_EQ(r.Next(s).kind, StepKind::kRequestSnapshot);
  s.snapshot_index = 151;
  Apply(r.Next(s), &s, 150);  // release old files
  Step promote = r.Next(s);
  ASSERT_EQ(promote.kind, StepKind::kPromotePending);
  Apply(promote, &s, 150);
  // The queued request starts the next rotation at once.
  EXPECT_EQ(r.Next(s).kind, StepKind::kCreatePending);
}

TEST(KeyRotatorTest, KeyFileFlagSetDuringARotationSurvivesIt) {
  KeyRotator r;
  KeyStoreState s = Steady();
  s.rotation_requested = true;
  Apply(r.Next(s), &s, 150);
  s.rotation_requested = true;  // set again by an operator mid-rotation
  Apply(r.Next(s), &s, 150);
  r.Next(s);  // asks for the snapshot
  s.snapshot_index = 151;
  Apply(r.Next(s), &s, 150);
  Apply(r.Next(s), &s, 150);
  EXPECT_EQ(s.current, kNew);
  EXPECT_EQ(r.Next(s).kind, StepKind::kCreatePending);
}

TEST(KeyRotatorTest, SnapshotIsRequestedOncePerProcess) {
  KeyRotator r;
  r.RequestRotation();
  KeyStoreState s = Steady();
  Apply(r.Next(s), &s, 150);
  Apply(r.Next(s), &s, 150);
  EXPECT_EQ(r.Next(s).kind, StepKind::kRequestSnapshot);
  EXPECT_EQ(r.Next(s).kind, StepKind::kNone);
  EXPECT_EQ(r.Next(s).kind, StepKind::kNone);
}

TEST(KeyRotatorTest, OldKeyStillInUseAfterReleaseIsReleasedAgain) {
  // A retained file below the snapshot that could not be removed keeps the
  // old key: the rotator never promotes past it.
  KeyRotator r;
  KeyStoreState s = Steady();
  s.pending = kNew;
  s.keys_held = {kOld, kNew};
  s.wal_write_key = kNew;
  s.write_key_first_index = 50;
  s.snapshot_index = 60;
  s.keys_in_use = {kOld, kNew};
  EXPECT_EQ(r.Next(s).kind, StepKind::kReleaseOldFiles);
  EXPECT_EQ(r.Next(s).kind, StepKind::kReleaseOldFiles);
}

TEST(KeyRotatorTest, UnneededKeysAreForgotten) {
  KeyRotator r;
  KeyStoreState s = Steady();
  const KeyId stray(0x33333333);
  s.keys_held = {kOld, stray};
  Step step = r.Next(s);
  EXPECT_EQ(step.kind, StepKind::kForgetKey);
  EXPECT_EQ(step.key, stray);
  s.keys_in_use.push_back(stray);  // still needed by a retained file: kept
  EXPECT_EQ(r.Next(s).kind, StepKind::kNone);
}

TEST(KeyRotatorTest, AgeRuleIsOffByDefaultAndNeedsAKnownAge) {
  KeyStoreState s = Steady();
  s.now = absl::UnixEpoch() + absl::Hours(1000);
  s.current_created = absl::UnixEpoch();
  EXPECT_FALSE(KeyRotator().RotationDue(s));
  RotationPolicy p;
  p.max_age = absl::Hours(24);
  KeyRotator r(p);
  EXPECT_TRUE(r.RotationDue(s));
  s.current_created = s.now - absl::Hours(23);
  EXPECT_FALSE(r.RotationDue(s));
  s.current_created.reset();
  EXPECT_FALSE(r.RotationDue(s));
}

TEST(KeyRotatorTest, StepsHaveReadableNames) {
  Step s;
  s.kind = StepKind::kRequestSnapshot;
  s.index = 42;
  EXPECT_EQ(s.DebugString(), "request-snapshot index 42");
  s.kind = StepKind::kForgetKey;
  s.key = KeyId(0x1a2b3c4d);
  EXPECT_EQ(s.DebugString(), "forget-key key 0x1a2b3c4d");
}

}  // namespace
}  // namespace sealwal::keyrotator
