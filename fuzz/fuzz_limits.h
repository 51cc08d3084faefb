/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The profile caps the decoding harnesses share (fuzz_pprof, fuzz_folded,
 * fuzz_legacy, fuzz_push): small, so that one input runs in milliseconds and
 * a hostile one reaches every cap. Each harness sets the rest (the gunzip
 * cap, the line length, its own decoder's caps) after this.
 */
#ifndef BRAID_FUZZ_LIMITS_H
#define BRAID_FUZZ_LIMITS_H

#include "profile/profile.h"

static void fuzz_profile_limits(struct profile_limits *lim)
{
	profile_limits__default(lim);
	lim->max_decode_memory = 64u << 20;
	lim->max_samples = 20000;
	lim->max_locations = 20000;
	lim->max_functions = 20000;
	lim->max_mappings = 1024;
	lim->max_strings = 20000;
	lim->max_stack_depth = 64;
}

#endif
