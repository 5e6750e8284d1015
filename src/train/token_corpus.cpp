#include "train/token_corpus.h"

#include <fmt/format.h>
#include <omp.h>

#include <cstring>
#include <filesystem>

#include "train/data.h"
#include "util/error.h"

namespace edgellm {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'E', 'D', 'G', 'E', 'T', 'O', 'K', '1'};
constexpr size_t kChunk = 4 << 20;

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// Chunk boundaries of `text`: after a "\n\n" at or beyond each multiple of kChunk.
std::vector<std::pair<size_t, size_t>> chunks_of(const std::string& text) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.size();
    if (text.size() - start > kChunk) {
      const size_t cut = text.find("\n\n", start + kChunk);
      if (cut != std::string::npos) end = cut + 2;
    }
    out.emplace_back(start, end);
    start = end;
  }
  return out;
}

}  // namespace

std::shared_ptr<TokenCorpus> TokenCorpus::open(const std::string& path) {
  auto c = std::make_shared<TokenCorpus>();
  c->file_ = MappedFile::open(path);
  ByteReader r(c->file_->data(), c->file_->size(), path);
  if (std::memcmp(r.take(8, "magic"), kMagic, 8) != 0)
    fail("[data] {}: not an edgellm token file (magic)", path);
  const uint32_t width = r.read<uint32_t>("width");
  const uint32_t n_docs = r.read<uint32_t>("n_docs");
  const uint64_t n = r.read<uint64_t>("n_tokens");
  r.read<uint64_t>("key");
  if (width != 2 && width != 4) fail("[data] {}: token width {} (expected 2 or 4)", path, width);
  if (n_docs > r.remaining() / 8) fail("[data] {}: n_docs {} exceeds the file", path, n_docs);
  for (uint32_t d = 0; d < n_docs; ++d) {
    const uint64_t s = r.read<uint64_t>("document start");
    if (s >= n || (d > 0 && int64_t(s) <= c->docs_.back()))
      fail("[data] {}: document {} start {} out of order or range", path, d, s);
    c->docs_.push_back(static_cast<int64_t>(s));
  }
  if (n > r.remaining() / width)
    fail("[data] {}: {} tokens of {} bytes exceed the file ({} bytes left)", path, n, width,
         r.remaining());
  const uint8_t* p = r.take(n * width, "tokens");
  if (width == 2)
    c->w16_ = reinterpret_cast<const uint16_t*>(p);
  else
    c->w32_ = reinterpret_cast<const uint32_t*>(p);
  c->n_ = static_cast<int64_t>(n);
  return c;
}

std::shared_ptr<TokenCorpus> TokenCorpus::build(const std::vector<std::string>& files,
                                                const Tokenizer& tok,
                                                const std::string& tokenizer_file,
                                                const std::string& cache_dir, bool* reused) {
  if (files.empty()) fail("[data] no training text files given");
  uint64_t key = 0xcbf29ce484222325ull;
  {
    const std::string t = tokenizer_file.empty() ? tok.kind() : read_file(tokenizer_file);
    key = fnv1a(key, t.data(), t.size());
  }
  for (const std::string& f : files) {
    auto m = MappedFile::open(f);
    key = fnv1a(key, m->data(), m->size());
    const uint64_t size = m->size();
    key = fnv1a(key, &size, sizeof size);
  }
  const std::string path = fmt::format("{}/tokens-{:016x}.bin", cache_dir, key);
  if (fs::exists(path)) {
    if (reused) *reused = true;
    return open(path);
  }
  if (reused) *reused = false;
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) fail("[data] cannot create token cache directory {}: {}", cache_dir, ec.message());
  const int V = tok.vocab_size();
  const uint32_t width = V <= 65536 ? 2 : 4;
  std::vector<int64_t> docs;
  std::vector<int32_t> ids;
  for (const std::string& f : files) {
    const std::string text = read_file(f);
    if (text.empty()) fail("[data] {}: empty text file", f);
    const auto chunks = chunks_of(text);
    std::vector<std::vector<int32_t>> enc(chunks.size());
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < chunks.size(); ++i)
      enc[i] = tok.encode(
          std::string_view(text).substr(chunks[i].first, chunks[i].second - chunks[i].first));
    docs.push_back(static_cast<int64_t>(ids.size()));
    ids.push_back(tok.bos_id());
    for (const auto& e : enc) ids.insert(ids.end(), e.begin(), e.end());
  }
  for (int32_t id : ids)
    if (id < 0 || id >= V) fail("[data] tokenizer produced id {} outside its vocab of {}", id, V);
  AtomicWriter w(path);
  w.write(kMagic, 8);
  const uint32_t n_docs = static_cast<uint32_t>(docs.size());
  const uint64_t n = ids.size();
  w.write(&width, 4);
  w.write(&n_docs, 4);
  w.write(&n, 8);
  w.write(&key, 8);
  for (int64_t d : docs) {
    const uint64_t u = static_cast<uint64_t>(d);
    w.write(&u, 8);
  }
  if (width == 2) {
    std::vector<uint16_t> s(ids.begin(), ids.end());
    w.write(s.data(), s.size() * 2);
  } else {
    w.write(ids.data(), ids.size() * 4);
  }
  w.commit();
  return open(path);
}

size_t TokenWindows::size() const {
  if (seq <= 0 || end <= begin) return 0;
  const int64_t all = (end - begin) / seq;
  return static_cast<size_t>((all + stride - 1) / stride);
}

void TokenWindows::fill(size_t i, Example& e) const {
  const int64_t start = begin + static_cast<int64_t>(i) * stride * seq;
  e.tokens.resize(seq);
  e.targets.resize(seq);
  e.tokens[0] = bos;
  for (int64_t t = 0; t < seq; ++t) {
    const int32_t id = corpus->at(start + t);
    e.targets[t] = id == bos ? -1 : id;
    if (t + 1 < seq) e.tokens[t + 1] = id;
  }
}

}  // namespace edgellm
