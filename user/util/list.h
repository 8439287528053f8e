/* SPDX-License-Identifier: GPL-2.0 */
/* A minimal intrusive doubly linked list, in the kernel's style. */
#ifndef XM_LIST_H
#define XM_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct xm_list {
	struct xm_list *next, *prev;
};

#define xm_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void xm_list_init(struct xm_list *h)
{
	h->next = h->prev = h;
}

static inline bool xm_list_empty(const struct xm_list *h)
{
	return h->next == h;
}

static inline void xm_list_add_tail(struct xm_list *h, struct xm_list *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static inline void xm_list_del(struct xm_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

#define xm_list_for_each_safe(pos, tmp, head)                                                      \
	for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif
