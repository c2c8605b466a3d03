// native/conv_select.h: which algorithm runs each convolution (conv.cc asks, conv_select.cc decides).
//
// What it is: the policy (RESNET_CONV_ALGO or setConvPolicy), the per-shape choices of the benchmark policy
// (measured on first use, as cuDNN's benchmark mode does, and kept in memory and in an optional cache file), and
// the timer used to measure. What it is not: the algorithms themselves (conv.cc, winograd.cc).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "context.h"

namespace rn {

/**
 * The algorithms a convolution can run with. Auto is oneDNN's own choice (convolution_auto); Ours is our Winograd
 * (winograd.cc), OursDirect our direct kernel for few input channels (small_conv.cc, inference only),
 * DirectBlocked oneDNN direct with activations in the channel-blocked layout (nChw16c/nChw8c) instead of the one
 * oneDNN prefers (inference only: under bf16 it prefers nhwc and its brgemm kernel, 1.5x slower than its blocked
 * kernel for the 512-channel layers on a Zen 5), OursGemm our matrix-product kernel for small output maps
 * (gemm_conv.cc, inference only, f32).
 */
enum class ConvAlgo { Direct, Auto, OnednnWinograd, Ours, OursDirect, DirectBlocked, OursGemm };
const char* convAlgoName(ConvAlgo a);

/** The best run of f, in ms, after one untimed run (first touches, JIT warm-up): of 3 runs, or of as many as fill 5 ms. */
double timeConvCandidate(const std::function<void()>& f);
/**
 * timeConvCandidate as a layer of a whole graph sees it: the caches emptied before each of 5 timed runs (after one
 * untimed), so that its weights come from memory. Timed with its weights in cache, a batch-1 layer misleads: oneDNN's
 * Winograd won a 512-channel layer alone (0.13 against 0.19 ms on a Zen 5) whose 4x larger transformed weights
 * made it the slower in the graph (0.28 against 0.21 ms).
 */
double timeConvCandidateCold(const std::function<void()>& f);

/**
 * The algorithm for the call named `key`. A fixed policy's algorithm where it applies (else Direct); under
 * "benchmark" the remembered choice, else each of `candidates` that applies is timed (`timeMs`, on the call's own
 * inputs) and, taking them in order of accuracy (most accurate first), the first within 5% of the fastest wins,
 * so that timing noise between near-equals never trades accuracy for nothing. The choice is remembered.
 */
ConvAlgo chooseConvAlgo(const std::string& key, const std::vector<ConvAlgo>& candidates,
                        const std::function<bool(ConvAlgo)>& applies, const std::function<double(ConvAlgo)>& timeMs);

// The policies: "benchmark" (default: chooseConvAlgo measures), "deterministic" (oneDNN direct everywhere: fixed,
// independent of timing, the most accurate), or one algorithm forced where it applies: "direct", "auto",
// "winograd" (ours), "onednn-winograd", "ours-direct" (our small-channel inference kernel),
// "direct-blocked", "ours-gemm" (our small-map inference kernel).
// exports: setConvPolicy(policy, cacheFile | null), convChoices() -> { policy, cacheFile, choices: [...] }
Napi::Value setConvPolicy(const Napi::CallbackInfo& info);
Napi::Value convChoices(const Napi::CallbackInfo& info);
/** convPolicy() -> the policy in force (what convChoices().policy says, without listing the choices) */
Napi::Value convPolicy(const Napi::CallbackInfo& info);
/**
 * Named decisions above single convolutions, kept and shared like the choices (in memory and in the cache file):
 * convDecision(key) -> value | null; recordConvDecision(key, value) -> the value in force (one recorded first by
 * another process wins). Keys start with "graph|".
 */
Napi::Value convDecision(const Napi::CallbackInfo& info);
Napi::Value recordConvDecision(const Napi::CallbackInfo& info);

}  // namespace rn
