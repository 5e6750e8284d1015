// EDGELLM_CHOSEN(FN): the active target's entry of FN's Highway dispatch table, for the hoisted
// `*_kernel()` lookups of the *_kernels.cpp files (include it in their HWY_ONCE section, after
// HWY_EXPORT). detail::ensure_init() must have run first: it runs Highway's Update, so the index
// is a real target, not the table's initialising trampoline. A build for one target only (the
// `native` preset: -march=native leaves Highway a single attainable target) has a one-entry table
// and static dispatch: the target index would read past it.
#pragma once

#include "hwy/highway.h"

#if (HWY_TARGETS & (HWY_TARGETS - 1)) == 0
#define EDGELLM_CHOSEN(FN) (&HWY_STATIC_DISPATCH(FN))
#else
#define EDGELLM_CHOSEN(FN) HWY_DISPATCH_TABLE(FN)[hwy::GetChosenTarget().GetIndex()]
#endif
