// native/conv_select.cc: the convolution algorithm policy, the benchmark choices and their cache file.
//
// What it is: see conv_select.h. Choices are keyed by pass, shapes, stride, padding and bias (conv.cc builds
// the key), so a new batch size is measured anew. The cache file holds one "key<TAB>algorithm" line per choice
// under a first line naming the machine (CPU model, oneDNN version and ISA, our kernels' ISA, threads): a
// file made on another machine or configuration is ignored, so a choice is only reused where it was measured.
// Reusing it matters beyond start-up time: candidates sum in different orders, and a run resumed in a new
// process must pick the same kernels as the interrupted one to continue bit for bit.
// Beside the choices it keeps named decisions made above the convolutions ("graph|..." keys: the inference graph's
// whole-graph check, src/models/inference.ts), so that every process of the machine decides alike. Processes share
// the file: each rewrite first merges what others wrote, under a lock (FILE.lock), and a choice or decision another
// process recorded first is adopted instead of one's own measurement, so two processes never disagree for long.
// What it is not: the measurement of whole steps (src/bench) or any kernel.
// References: oneDNN 2.6 dnnl.hpp (dnnl_version, get_effective_cpu_isa); cuDNN's benchmark mode
// (torch.backends.cudnn.benchmark) for the idea of measuring on first use.
#include "conv_select.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "winograd.h"

namespace rn {

namespace {
const char* const kPolicies[] = {"benchmark", "deterministic", "direct", "auto", "winograd", "onednn-winograd", "ours-direct",
                                 "direct-blocked", "ours-gemm"};

std::string checkedPolicy(const std::string& p, const char* source) {
  for (const char* k : kPolicies)
    if (p == k) return p;
  throw std::invalid_argument(std::string(source) + ": expected benchmark, deterministic, direct, auto, winograd, " +
                              "onednn-winograd, ours-direct, direct-blocked or ours-gemm, received \"" + p + "\"");
}

std::string& policyRef() {
  static std::string p = [] {
    const char* v = std::getenv("RESNET_CONV_ALGO");
    return checkedPolicy(v && *v ? v : "benchmark", "RESNET_CONV_ALGO");
  }();
  return p;
}

struct Choice {
  ConvAlgo algo;
  bool measured;  // here, in this process (else read from the cache file)
  std::vector<std::pair<ConvAlgo, double>> ms;
};

std::map<std::string, Choice>& choices() {
  static std::map<std::string, Choice> c;
  return c;
}

std::string& cacheFile() {
  static std::string f;
  return f;
}

struct Decision {
  std::string value;
  bool measured;  // recorded by this process (else read from the cache file)
};

/** Named decisions ("graph|..." keys): recordConvDecision. */
std::map<std::string, Decision>& decisions() {
  static std::map<std::string, Decision> d;
  return d;
}

constexpr const char* kDecisionPrefix = "graph|";

/** Holds FILE.lock (flock) while it lives, where a cache file is set; a cache, so failing to lock only loses that. */
class CacheLock {
 public:
  CacheLock() {
    if (cacheFile().empty()) return;
    fd_ = ::open((cacheFile() + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~CacheLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  CacheLock(const CacheLock&) = delete;
  CacheLock& operator=(const CacheLock&) = delete;

 private:
  int fd_ = -1;
};

std::string cpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

/**
 * The version of the candidate sets: raised when an algorithm joins the candidates (v2: our small-channel kernel
 * for inference; v3: the Winograd algorithms in f32 under bf16, conv.cc and conv_infer.cc; v4: oneDNN direct with
 * blocked activations for inference; v6: our matrix-product kernel for small maps, gemm_conv.cc), so that a file of older choices, made without
 * it, is measured again rather than trusted; and when a rule that makes them changes (v5: the inference graph's
 * whole-graph check decides by the fastest run instead of the median, src/models/inference.ts directWins).
 */
constexpr int kChoicesVersion = 6;

std::string machineLine() {
  return "# " + cpuModel() + " | " + engineSummary() + " | our kernels " + kernelIsa() + " | choices v" +
         std::to_string(kChoicesVersion);
}

bool algoByName(const std::string& n, ConvAlgo* out) {
  for (ConvAlgo a : {ConvAlgo::Direct, ConvAlgo::Auto, ConvAlgo::OnednnWinograd, ConvAlgo::Ours, ConvAlgo::OursDirect,
                     ConvAlgo::DirectBlocked, ConvAlgo::OursGemm})
    if (n == convAlgoName(a)) return *out = a, true;
  return false;
}

/** Adds the file's entries that are not in memory (emplace: one already known is kept). */
void loadCache(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line) || line != machineLine()) return;  // absent, or made elsewhere
  while (std::getline(in, line)) {
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    const std::string key = line.substr(0, tab), value = line.substr(tab + 1);
    ConvAlgo a;
    if (key.rfind(kDecisionPrefix, 0) == 0) decisions().emplace(key, Decision{value, false});
    else if (algoByName(value, &a)) choices().emplace(key, Choice{a, false, {}});
  }
}

/** Adds what other processes wrote to the cache file since it was read (hold a CacheLock, then saveCache if needed). */
void mergeCacheFile() {
  if (!cacheFile().empty()) loadCache(cacheFile());
}

/**
 * Rewrites the cache file atomically (a temporary file renamed over it); a cache, so failures are ignored. Call it
 * holding a CacheLock, after mergeCacheFile, so that what other processes wrote is kept.
 */
void saveCache() {
  const std::string& path = cacheFile();
  if (path.empty()) return;
  const std::string tmp = path + ".tmp-" + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return;
    out << machineLine() << "\n";
    for (const auto& [k, c] : choices()) out << k << "\t" << convAlgoName(c.algo) << "\n";
    for (const auto& [k, d] : decisions()) out << k << "\t" << d.value << "\n";
    if (!out.flush()) {
      std::remove(tmp.c_str());
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
}
}  // namespace

const char* convAlgoName(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::Direct: return "direct";
    case ConvAlgo::Auto: return "auto";
    case ConvAlgo::OnednnWinograd: return "onednn-winograd";
    case ConvAlgo::Ours: return "winograd";
    case ConvAlgo::OursDirect: return "ours-direct";
    case ConvAlgo::DirectBlocked: return "direct-blocked";
    case ConvAlgo::OursGemm: return "ours-gemm";
  }
  return "?";
}

namespace {
/** The algorithm a fixed policy asks for; false under "benchmark". */
bool fixedConvAlgo(ConvAlgo* out) {
  const std::string& p = policyRef();
  if (p == "benchmark") return false;
  if (p == "deterministic") return *out = ConvAlgo::Direct, true;
  return algoByName(p, out);
}

/** The choice remembered for `key` (measured in this process or read from the cache file). */
bool rememberedConvChoice(const std::string& key, ConvAlgo* out) {
  auto it = choices().find(key);
  if (it == choices().end()) return false;
  *out = it->second.algo;
  return true;
}

/**
 * Records a measured choice with each candidate's time and rewrites the cache file if one is set; unless another
 * process recorded a choice for `key` in the file meanwhile that `applies`: then that one is kept and returned.
 */
ConvAlgo rememberConvChoice(const std::string& key, ConvAlgo algo, const std::vector<std::pair<ConvAlgo, double>>& ms,
                            const std::function<bool(ConvAlgo)>& applies) {
  CacheLock lock;
  mergeCacheFile();
  ConvAlgo theirs;
  if (rememberedConvChoice(key, &theirs) && applies(theirs)) return theirs;
  choices()[key] = Choice{algo, true, ms};
  saveCache();
  return algo;
}
}  // namespace

double timeConvCandidate(const std::function<void()>& f) {
  f();
  double best = 1e300, total = 0;
  // at least 3 runs, and for short kernels (a batch-1 layer: tens of microseconds) enough runs to fill 5 ms, so
  // one preempted run or a slow thread wake-up does not decide the choice
  for (int i = 0; i < 200 && (i < 3 || total < 5.0); i++) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, ms);
    total += ms;
  }
  return best;
}

namespace {
/**
 * Pushes what the caches hold out of them (both cores' L2 and the shared L3): a write to every cache line of a
 * buffer twice the L3's size (64 MB where the size is not reported), kept for the process once made.
 */
void evictCaches() {
  static std::vector<unsigned char> buf = [] {
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    const size_t bytes = std::min<size_t>(std::max<size_t>(l3 > 0 ? 2 * static_cast<size_t>(l3) : 0, 64u << 20), 512u << 20);
    return std::vector<unsigned char>(bytes, 0);
  }();
  unsigned char* p = buf.data();
  const int64_t lines = static_cast<int64_t>(buf.size() / 64);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < lines; i++) p[i * 64]++;
}
}  // namespace

double timeConvCandidateCold(const std::function<void()>& f) {
  f();
  double best = 1e300;
  for (int i = 0; i < 5; i++) {
    evictCaches();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

ConvAlgo chooseConvAlgo(const std::string& key, const std::vector<ConvAlgo>& candidates,
                        const std::function<bool(ConvAlgo)>& applies, const std::function<double(ConvAlgo)>& timeMs) {
  ConvAlgo algo;
  if (fixedConvAlgo(&algo)) return applies(algo) ? algo : ConvAlgo::Direct;
  if (rememberedConvChoice(key, &algo) && applies(algo)) return algo;
  std::vector<std::pair<ConvAlgo, double>> times;
  double fastest = 1e300;
  for (ConvAlgo cand : candidates) {
    if (!applies(cand)) continue;
    times.emplace_back(cand, timeMs(cand));
    fastest = std::min(fastest, times.back().second);
  }
  if (times.empty()) throw std::logic_error("chooseConvAlgo: no candidate applies to " + key);
  size_t pick = 0;
  while (times[pick].second > 1.05 * fastest) pick++;
  return rememberConvChoice(key, times[pick].first, times, applies);
}

// setConvPolicy(policy | null, cacheFile | null | undefined): the policy for later convolutions (null: keep);
// a cache file to read choices from and write new ones to (null: none; undefined: keep). Choices already made
// stay remembered; decisions are the new file's (a test with a file of its own neither sees nor leaves any).
Napi::Value setConvPolicy(const Napi::CallbackInfo& info) {
  if (info[0].IsString()) policyRef() = checkedPolicy(info[0].As<Napi::String>().Utf8Value(), "setConvPolicy");
  else if (!info[0].IsNull() && !info[0].IsUndefined()) throw std::invalid_argument("expected policy to be a string");
  if (info.Length() > 1 && info[1].IsString()) {
    cacheFile() = info[1].As<Napi::String>().Utf8Value();
    decisions().clear();  // the new file's decisions only: none of the old file's is written into it
    loadCache(cacheFile());
  } else if (info.Length() > 1 && info[1].IsNull()) {
    cacheFile().clear();
  }
  return info.Env().Undefined();
}

Napi::Value convPolicy(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), policyRef()); }

// convDecision(key) -> the value recorded for a "graph|..." key (here or in the cache file), or null
Napi::Value convDecision(const Napi::CallbackInfo& info) {
  const std::string key = info[0].As<Napi::String>().Utf8Value();
  auto it = decisions().find(key);
  if (it == decisions().end()) {
    CacheLock lock;  // another process may have recorded it since the file was read
    mergeCacheFile();
    it = decisions().find(key);
  }
  return it == decisions().end() ? info.Env().Null() : Napi::String::New(info.Env(), it->second.value);
}

// recordConvDecision(key, value) -> the value in force for key: `value`, or the one another process recorded first
Napi::Value recordConvDecision(const Napi::CallbackInfo& info) {
  const std::string key = info[0].As<Napi::String>().Utf8Value();
  const std::string value = info[1].As<Napi::String>().Utf8Value();
  if (key.rfind(kDecisionPrefix, 0) != 0 || key.find_first_of("\t\n") != std::string::npos ||
      value.empty() || value.find_first_of("\t\n") != std::string::npos)
    throw std::invalid_argument("recordConvDecision: expected a key starting with \"graph|\" and a value, without tabs or newlines");
  CacheLock lock;
  mergeCacheFile();
  auto it = decisions().find(key);
  if (it == decisions().end()) {
    decisions()[key] = Decision{value, true};
    saveCache();
    return Napi::String::New(info.Env(), value);
  }
  return Napi::String::New(info.Env(), it->second.value);
}

// convChoices() -> { policy, cacheFile, choices: [{ key, algo, measured, ms: { algo: ms } }] }
Napi::Value convChoices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
  r.Set("policy", policyRef());
  r.Set("cacheFile", cacheFile().empty() ? env.Null() : Napi::String::New(env, cacheFile()));
  Napi::Array list = Napi::Array::New(env);
  uint32_t i = 0;
  for (const auto& [k, c] : choices()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("key", k);
    o.Set("algo", convAlgoName(c.algo));
    o.Set("measured", c.measured);
    Napi::Object ms = Napi::Object::New(env);
    for (const auto& [a, t] : c.ms) ms.Set(convAlgoName(a), t);
    o.Set("ms", ms);
    list.Set(i++, o);
  }
  r.Set("choices", list);
  Napi::Array dl = Napi::Array::New(env);
  uint32_t j = 0;
  for (const auto& [k, d] : decisions()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("key", k);
    o.Set("value", d.value);
    o.Set("measured", d.measured);
    dl.Set(j++, o);
  }
  r.Set("decisions", dl);
  return r;
}

}  // namespace rn
