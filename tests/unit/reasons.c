/* SPDX-License-Identifier: MIT */
/*
 * The failure reasons, checked row by row from the one list in vfio-uring.h
 * (VFIO_URING_REASONS): values and names distinct and stable, the library's name and errno
 * of each, and the promise of the wire checks: each has an errno of its own, distinct from
 * every other check's and from the fixed errno of every other reason a destination can
 * fail with, so that vu_wire_reason() maps a decoder's errno back to its check.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "reasons.h"

#include "check.h"

struct row {
	enum vfio_uring_reason reason;
	int value, err;
	const char *name, *side, *meaning;
	bool wire;
};

#define WIRE_ROW(name, value, err, side, meaning) \
	{ VFIO_URING_REASON_##name, value, err, #name, #side, meaning, true },
#define OTHER_ROW(name, value, err, side, meaning) \
	{ VFIO_URING_REASON_##name, value, err, #name, #side, meaning, false },
static const struct row rows[] = {
	VFIO_URING_REASONS_WIRE(WIRE_ROW) VFIO_URING_REASONS_OTHER(OTHER_ROW)
};
#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

static bool on_destination(const struct row *r)
{
	return strcmp(r->side, "DESTINATION") == 0 || strcmp(r->side, "BOTH") == 0;
}

static void test_rows(void)
{
	for (size_t i = 0; i < N_ROWS; i++) {
		const struct row *r = &rows[i];

		CHECK(r->value > 0 && (int)r->reason == r->value, "%s: value %d", r->name, r->value);
		CHECK(strcmp(vfio_uring_reason_name(r->reason), r->name) == 0, "%s: name %s", r->name,
		      vfio_uring_reason_name(r->reason));
		CHECK(vu_reason_errno(r->reason) == -r->err, "%s: errno %d, the list says %d", r->name,
		      vu_reason_errno(r->reason), -r->err);
		CHECK(on_destination(r) || strcmp(r->side, "SOURCE") == 0, "%s: side %s", r->name, r->side);
		CHECK(r->meaning[0] && !strchr(r->meaning, '|') && !strchr(r->meaning, '\n'),
		      "%s: meaning must be one table cell", r->name);
		for (size_t j = i + 1; j < N_ROWS; j++) {
			CHECK(rows[j].value != r->value, "%s and %s share value %d", r->name,
			      rows[j].name, r->value);
			CHECK(strcmp(rows[j].name, r->name) != 0, "%s listed twice", r->name);
		}
	}
	CHECK(strcmp(vfio_uring_reason_name(VFIO_URING_REASON_NONE), "NONE") == 0, "NONE");
	CHECK(strcmp(vfio_uring_reason_name((enum vfio_uring_reason)100000), "unknown") == 0,
	      "a value the library does not know");
	CHECK(vu_reason_errno(VFIO_URING_REASON_NONE) == 0, "NONE has no errno");
}

/* Each wire check has its own errno: a caller can tell them apart even without the reason. */
static void test_wire_errnos_distinct(void)
{
	for (size_t i = 0; i < N_ROWS; i++) {
		const struct row *r = &rows[i];

		if (!r->wire)
			continue;
		CHECK(r->err > 0 && strcmp(r->side, "DESTINATION") == 0, "%s: a wire check needs an "
		      "errno of its own, on the destination", r->name);
		CHECK(vu_wire_reason(-r->err) == r->reason, "%s: errno %d maps back to %s", r->name,
		      -r->err, vfio_uring_reason_name(vu_wire_reason(-r->err)));
		for (size_t j = 0; j < N_ROWS; j++)
			if (j != i && rows[j].err && on_destination(&rows[j]))
				CHECK(rows[j].err != r->err, "%s and %s share errno %d (%s)", r->name,
				      rows[j].name, -r->err, strerror(r->err));
	}
	CHECK(vu_wire_reason(0) == VFIO_URING_REASON_NONE &&
	      vu_wire_reason(-ENOBUFS) == VFIO_URING_REASON_NONE, "not a wire check's errno");
}

int main(void)
{
	test_rows();
	test_wire_errnos_distinct();
	return check_result();
}
