// sealwal/snap/stream.h: streamed snapshots round-trip at every size edge, on 0..4
// worker threads, plaintext and both AEADs; chunk i reads directly; and
// every kind of damage fails cleanly: each bit of a small stream flipped,
// truncation at every length, the last chunk dropped, two chunks swapped,
// a chunk spliced from another stream, a header from another stream, the
// wrong key, a missing key.
#include "sealwal/snap/stream.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sealwal/base/data_gen.h"
#include "sealwal/env/mem_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace sealwal::snap {
namespace {

using ::sealwal::testing::IsOk;
using ::sealwal::testing::StatusIs;
using encryption::Algorithm;

constexpr uint32_t kChunk = 4096;

std::shared_ptr<encryption::Keyring> MakeKeys(Algorithm alg, uint32_t id = 0x11223344, char fill = 'k') {
  auto key = encryption::SecretKey::FromBytes(std::string(32, fill));
  auto dek = encryption::Dek::FromParts(encryption::KeyId(id), alg, std::move(*key));
  return *encryption::Keyring::ForDek(*dek);
}

class SnapStreamTest : public ::testing::TestWithParam<Algorithm> {
 protected:
  std::shared_ptr<encryption::Keyring> keys() {
    if (GetParam() == Algorithm::kNotEncrypted) return nullptr;
    if (keys_ == nullptr) keys_ = MakeKeys(GetParam());
    return keys_;
  }

  // Writes `data` as a stream at `path` (index 7, term 2 unless given).
  StreamRef Write(const std::string& path, absl::string_view data, int threads = 2,
                  uint64_t index = 7, uint64_t term = 2, size_t piece = 1000) {
    StreamOptions o;
    o.chunk_size = kChunk;
    o.threads = threads;
    auto w = StreamWriter::Create(fs_.get(), path, index, term, keys(), o);
    EXPECT_THAT(w, IsOk());
    for (size_t off = 0; off < data.size(); off += piece) {
      EXPECT_OK((*w)->Append(data.substr(off, piece)));
    }
    auto ref = (*w)->Finish();
    EXPECT_THAT(ref, IsOk());
    last_ = StreamExpectation{index, term, *ref};
    return *ref;
  }

  // What the .snap of the last stream written would say about it.
  const StreamExpectation& Expect() const { return last_; }

  // Reads the whole stream; the status of the first failure.
  absl::StatusOr<std::string> ReadAll(const std::string& path) { return ReadAll(path, Expect()); }
  absl::StatusOr<std::string> ReadAll(const std::string& path, const StreamExpectation& expect,
                                      int threads = 2) {
    StreamReadOptions o;
    o.threads = threads;
    auto r = StreamReader::Open(fs_.get(), path, keys(), expect, o);
    if (!r.ok()) return r.status();
    std::string out;
    for (;;) {
      auto c = (*r)->NextChunk();
      if (!c.ok()) return c.status();
      if (c->empty()) break;
      out.append(c->data(), c->size());
    }
    return out;
  }

  std::string File(const std::string& path) { return *env::ReadFileToString(fs_.get(), path); }
  void Put(const std::string& path, absl::string_view b) {
    ASSERT_OK(env::WriteFileAtomically(fs_.get(), path, b));
  }

  std::unique_ptr<env::FileSystem> fs_ = env::NewMemFileSystem();
  std::shared_ptr<encryption::Keyring> keys_;
  StreamExpectation last_;
};

TEST_P(SnapStreamTest, RoundTripAtEverySizeEdgeAndThreadCount) {
  for (uint64_t size : {0ull, 1ull, 4095ull, 4096ull, 4097ull, 8192ull, 3 * 4096ull + 17, 100000ull}) {
    for (int threads : {0, 1, 4}) {
      SCOPED_TRACE(absl::StrCat("size ", size, " threads ", threads));
      const std::string data = DataGen(1, size, threads, size);
      StreamRef ref = Write("/s", data, threads);
      EXPECT_EQ(ref.size, size);
      EXPECT_EQ(ref.algorithm, GetParam());
      ASSERT_OK_AND_ASSIGN(std::string back, ReadAll("/s", StreamExpectation{7, 2, ref}, threads));
      EXPECT_TRUE(back == data);
      EXPECT_THAT(fs_->FileExists("/s.tmp"), StatusIs(absl::StatusCode::kNotFound));
      // Read() in odd-sized pieces gives the same bytes.
      ASSERT_OK_AND_ASSIGN(auto r, StreamReader::Open(fs_.get(), "/s", keys(), Expect()));
      std::string viaread;
      char buf[777];
      for (;;) {
        ASSERT_OK_AND_ASSIGN(size_t n, r->Read(absl::MakeSpan(buf)));
        if (n == 0) break;
        viaread.append(buf, n);
      }
      EXPECT_TRUE(viaread == data);
    }
  }
}

TEST_P(SnapStreamTest, ReadChunkDirectlyAndConcurrently) {
  const std::string data = DataGen(2, 1, 1, 10 * kChunk + 5);
  Write("/s", data);
  ASSERT_OK_AND_ASSIGN(auto r, StreamReader::Open(fs_.get(), "/s", keys(), Expect()));
  ASSERT_EQ(r->chunk_count(), 11u);
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (uint64_t i = t; i < 11; i += 1) {
        auto c = r->ReadChunk(i);
        if (!c.ok() || *c != data.substr(i * kChunk, kChunk)) ++bad;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_THAT(r->ReadChunk(11), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_OK(r->VerifyEnds());
}

TEST_P(SnapStreamTest, EveryBitFlipFails) {
  const std::string data = DataGen(3, 1, 1, 2 * kChunk + 100);
  Write("/s", data);
  const std::string good = File("/s");
  int tried = 0;
  // Every bit of the header and of the chunk bytes near the boundaries;
  // every 61st byte elsewhere (payload bytes are all alike to the AEAD).
  for (size_t i = 0; i < good.size(); ++i) {
    const bool dense = i < kStreamHeaderSize + 64 || (i % (kChunk + 16)) < 40 ||
                       i + 64 > good.size();
    if (!dense && i % 61 != 0) continue;
    for (int bit = 0; bit < 8; bit += dense ? 1 : 3) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      Put("/b", bad);
      ++tried;
      EXPECT_THAT(ReadAll("/b", Expect(), 0), StatusIs(absl::StatusCode::kDataLoss))
          << "byte " << i << " bit " << bit;
    }
  }
  EXPECT_GT(tried, 1500);
}

TEST_P(SnapStreamTest, TruncationAtEveryLengthFails) {
  const std::string data = DataGen(4, 1, 1, 2 * kChunk + 100);
  StreamRef ref = Write("/s", data);
  const std::string good = File("/s");
  for (size_t n = 0; n < good.size(); n += (n < kStreamHeaderSize + 40 ? 1 : 7)) {
    Put("/t", good.substr(0, n));
    EXPECT_THAT(ReadAll("/t", StreamExpectation{7, 2, ref}, 0), StatusIs(absl::StatusCode::kDataLoss))
        << n;
  }
  // Extended by junk.
  Put("/t", good + "x");
  EXPECT_THAT(ReadAll("/t", StreamExpectation{7, 2, ref}, 0), StatusIs(absl::StatusCode::kDataLoss));
}

// The expectation is mandatory: a file cut or extended by whole chunks has
// a valid layout of its own, and only the .snap's size tells it apart.
// Open refuses both before a chunk is read.
TEST_P(SnapStreamTest, TruncatedOrExtendedStreamRefusedAtOpen) {
  const std::string data = DataGen(14, 1, 1, 3 * kChunk);  // 3 full chunks
  StreamRef ref = Write("/s", data);
  const std::string good = File("/s");
  const size_t stored = kChunk + ChunkTrailerSize(GetParam());
  ASSERT_EQ(good.size(), kStreamHeaderSize + 3 * stored);
  // Truncated by the last chunk.
  Put("/short", good.substr(0, kStreamHeaderSize + 2 * stored));
  EXPECT_THAT(StreamReader::Open(fs_.get(), "/short", keys(), StreamExpectation{7, 2, ref}),
              StatusIs(absl::StatusCode::kDataLoss, ::testing::HasSubstr("truncated or extended")));
  // Extended by a copy of its first chunk.
  Put("/long", good + good.substr(kStreamHeaderSize, stored));
  EXPECT_THAT(StreamReader::Open(fs_.get(), "/long", keys(), StreamExpectation{7, 2, ref}),
              StatusIs(absl::StatusCode::kDataLoss, ::testing::HasSubstr("truncated or extended")));
  // A .snap that claims another size refuses the intact file too.
  StreamRef other = ref;
  other.size += 1;
  EXPECT_THAT(StreamReader::Open(fs_.get(), "/s", keys(), StreamExpectation{7, 2, other}),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_OK(StreamReader::Open(fs_.get(), "/s", keys(), StreamExpectation{7, 2, ref}).status());
}

TEST_P(SnapStreamTest, DroppedLastChunkFails) {
  const std::string data = DataGen(5, 1, 1, 3 * kChunk);  // 3 full chunks
  StreamRef ref = Write("/s", data);
  const std::string good = File("/s");
  const size_t stored = kChunk + ChunkTrailerSize(GetParam());
  Put("/d", good.substr(0, kStreamHeaderSize + 2 * stored));
  EXPECT_THAT(ReadAll("/d", StreamExpectation{7, 2, ref}), StatusIs(absl::StatusCode::kDataLoss));
  // A reader never gets to see the missing end as valid: Open refuses it.
  EXPECT_THAT(StreamReader::Open(fs_.get(), "/d", keys(), StreamExpectation{7, 2, ref}),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST_P(SnapStreamTest, SwappedChunksFail) {
  const std::string data = DataGen(6, 1, 1, 3 * kChunk + 10);
  Write("/s", data);
  const std::string good = File("/s");
  const size_t stored = kChunk + ChunkTrailerSize(GetParam());
  std::string bad = good;
  bad.replace(kStreamHeaderSize, stored, good.substr(kStreamHeaderSize + stored, stored));
  bad.replace(kStreamHeaderSize + stored, stored, good.substr(kStreamHeaderSize, stored));
  Put("/w", bad);
  EXPECT_THAT(ReadAll("/w"), StatusIs(absl::StatusCode::kDataLoss));
  ASSERT_OK_AND_ASSIGN(auto r, StreamReader::Open(fs_.get(), "/w", keys(), Expect()));
  EXPECT_THAT(r->ReadChunk(0), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(r->ReadChunk(1), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_OK(r->ReadChunk(2).status());  // untouched chunks still read
}

TEST_P(SnapStreamTest, ChunkOrHeaderSplicedFromAnotherStreamFails) {
  // Same key, same snapshot, same data: only the per-file salt differs.
  const std::string data = DataGen(7, 1, 1, 3 * kChunk + 10);
  StreamRef a = Write("/a", data);
  StreamRef b = Write("/b", data);
  EXPECT_NE(a.salt, b.salt);
  const std::string fa = File("/a"), fb = File("/b");
  EXPECT_NE(fa.substr(kStreamHeaderSize), fb.substr(kStreamHeaderSize));  // never the same bytes
  const size_t stored = kChunk + ChunkTrailerSize(GetParam());
  std::string spliced = fa;
  spliced.replace(kStreamHeaderSize + stored, stored, fb.substr(kStreamHeaderSize + stored, stored));
  Put("/x", spliced);
  EXPECT_THAT(ReadAll("/x"), StatusIs(absl::StatusCode::kDataLoss));
  // b's header on a's chunks.
  std::string hdr = fa;
  hdr.replace(0, kStreamHeaderSize, fb.substr(0, kStreamHeaderSize));
  Put("/y", hdr);
  EXPECT_THAT(ReadAll("/y"), StatusIs(absl::StatusCode::kDataLoss));
  // A whole stream that is not the one the .snap names.
  EXPECT_THAT(ReadAll("/b", StreamExpectation{7, 2, a}), StatusIs(absl::StatusCode::kDataLoss));
  // A stream of another snapshot.
  EXPECT_THAT(ReadAll("/a", StreamExpectation{8, 2, a}), StatusIs(absl::StatusCode::kDataLoss));
}

INSTANTIATE_TEST_SUITE_P(Algorithms, SnapStreamTest,
                         ::testing::Values(Algorithm::kNotEncrypted, Algorithm::kAes256Gcm,
                                           Algorithm::kChaCha20Poly1305),
                         [](const auto& info) {
                           return std::string(info.param == Algorithm::kNotEncrypted ? "Plain"
                                              : info.param == Algorithm::kAes256Gcm ? "AesGcm"
                                                                                    : "ChaCha");
                         });

TEST(SnapStreamKeyTest, WrongMissingOrNoKey) {
  auto fs = env::NewMemFileSystem();
  auto keys = MakeKeys(Algorithm::kAes256Gcm, 5, 'a');
  StreamOptions o;
  o.chunk_size = kChunk;
  ASSERT_OK_AND_ASSIGN(auto w, StreamWriter::Create(fs.get(), "/s", 1, 1, keys, o));
  ASSERT_OK(w->Append(DataGen(1, 1, 1, 10000)));
  ASSERT_OK_AND_ASSIGN(StreamRef ref, w->Finish());
  const StreamExpectation expect{1, 1, ref};
  // Another key under the same id: authentication fails.
  auto wrong = MakeKeys(Algorithm::kAes256Gcm, 5, 'b');
  ASSERT_OK_AND_ASSIGN(auto r, StreamReader::Open(fs.get(), "/s", wrong, expect));
  EXPECT_THAT(r->VerifyEnds(), StatusIs(absl::StatusCode::kDataLoss));
  // No DEK with that id.
  EXPECT_THAT(StreamReader::Open(fs.get(), "/s", MakeKeys(Algorithm::kAes256Gcm, 6), expect),
              StatusIs(absl::StatusCode::kNotFound));
  // No keyring at all.
  EXPECT_THAT(StreamReader::Open(fs.get(), "/s", nullptr, expect),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // A keyring refuses a plaintext stream (a downgrade), with no option to
  // turn that off; without a keyring the same stream reads.
  ASSERT_OK_AND_ASSIGN(auto pw, StreamWriter::Create(fs.get(), "/p", 1, 1, nullptr, o));
  ASSERT_OK_AND_ASSIGN(StreamRef pref, pw->Finish());
  EXPECT_THAT(StreamReader::Open(fs.get(), "/p", keys, StreamExpectation{1, 1, pref}),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_OK(StreamReader::Open(fs.get(), "/p", nullptr, StreamExpectation{1, 1, pref}).status());
}

TEST(SnapStreamWriterTest, AbortAndDestroyRemoveTheTempFileAndErrorsAreSticky) {
  auto fs = env::NewMemFileSystem();
  {
    ASSERT_OK_AND_ASSIGN(auto w, StreamWriter::Create(fs.get(), "/s", 1, 1, nullptr, {}));
    ASSERT_OK(w->Append("abc"));
    EXPECT_OK(fs->FileExists("/s.tmp"));
  }
  EXPECT_THAT(fs->FileExists("/s.tmp"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs->FileExists("/s"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto w, StreamWriter::Create(fs.get(), "/s", 1, 1, nullptr, {}));
  w->Abort();
  EXPECT_FALSE(w->Append("x").ok());
  EXPECT_FALSE(w->Finish().ok());
  StreamOptions bad;
  bad.chunk_size = 100;
  EXPECT_THAT(StreamWriter::Create(fs.get(), "/s", 1, 1, nullptr, bad),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sealwal::snap
