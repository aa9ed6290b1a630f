/*
 * crtools restorer blob: memory. Special mappings parked and put back, vmas mapped, pages read
 * (or copied with UFFDIO_COPY, shared with the launcher), protections set, mm fields.
 */
#include "blob.h"

/* Page runs flagged uffd (big runs in private anonymous areas, chosen by the plan) are filled
   with UFFDIO_COPY: the kernel allocates each page and copies into it in one go (no zeroing, no
   fault per page), reading through a read-only mapping of the pages image (page cache, no copy).
   They are cut into PAGE_CHUNK pieces, claimed one at a time through the task's status record,
   so that the launcher can take pieces too (with its own copy of the userfaultfd, pidfd_getfd)
   while this task does the same: the copying runs on two CPUs. */
static u64 run_chunks(const struct plan_run *r)
{
	return (r->npages * PAGE + PAGE_CHUNK - 1) / PAGE_CHUNK;
}

/* piece k of the flagged runs: run index, byte offset in it, length */
static u64 chunk_at(const struct plan_run *r, u64 nruns, u64 k, u64 *at, u64 *len)
{
	u64 i;
	for (i = 0; i < nruns; i++) {
		u64 n;
		if (!r[i].uffd)
			continue;
		n = run_chunks(&r[i]);
		if (k < n) {
			*at = k * PAGE_CHUNK;
			*len = r[i].npages * PAGE - *at < PAGE_CHUNK ? r[i].npages * PAGE - *at : PAGE_CHUNK;
			return i;
		}
		k -= n;
	}
	return nruns;
}

/* UFFDIO_COPY len bytes at off of the pages image to dst; 0 or -errno */
static long copy_chunk(long uffd, long pfd, u64 dst, u64 off, u64 len)
{
	struct { u64 dst, src, len, mode; long long copy; } cp;
	long src = S6(NR_mmap, 0, len, 1 /* PROT_READ */, 0x02 | 0x8000 /* MAP_PRIVATE | MAP_POPULATE */, pfd, off), r = 0;
	u64 done = 0;
	int again = 0;

	if (src < 0)
		return src;
	while (done < len) {
		long e;
		cp.dst = dst + done;
		cp.src = (u64)src + done;
		cp.len = len - done;
		cp.mode = 0;
		cp.copy = 0;
		e = S3(NR_ioctl, uffd, 0xc028aa03 /* UFFDIO_COPY */, &cp);
		if (e == 0)
			break;
		if (cp.copy > 0) {
			done += (u64)cp.copy; /* partial: go on from there */
			continue;
		}
		if (e != -EAGAIN || ++again > 1000) {
			r = e;
			break;
		}
	}
	S2(NR_munmap, src, len);
	return r;
}

/* the pages image of run r, kept open while consecutive runs share it */
static long pages_fd(struct ctx *c, const struct plan_run *r, u64 *cur, long *pfd)
{
	u64 path = r->path ? r->path : c->t->pages_path;
	if (path != *cur) {
		if (*pfd >= 0)
			S1(NR_close, *pfd);
		*pfd = chk(c, xopen(STR(c, path), O_RDONLY), r->vaddr);
		*cur = path;
	}
	return *pfd;
}

/* unregister the flagged areas among the first n */
static void uffd_unregister(long uffd, const struct plan_vma *v, u64 n)
{
	u64 i;
	for (i = 0; i < n; i++) {
		struct { u64 start, len; } range = { v[i].start, v[i].end - v[i].start };
		if (v[i].uffd)
			S3(NR_ioctl, uffd, 0x8010aa01 /* UFFDIO_UNREGISTER */, &range);
	}
}

/* a userfaultfd with every flagged area registered whole, or -1 (then every run is read with pread) */
static long uffd_setup(const struct plan_vma *v, u64 nvmas)
{
	u64 api[3] = { 0xAA, 0, 0 }, i;
	long uffd = S1(NR_userfaultfd, 02000000 | 04000 | 1 /* O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY */);
	if (uffd == -EINVAL)
		uffd = S1(NR_userfaultfd, 02000000 | 04000);
	if (uffd < 0)
		return -1;
	if (S3(NR_ioctl, uffd, 0xc018aa3f /* UFFDIO_API */, api) < 0)
		goto no;
	for (i = 0; i < nvmas; i++) {
		struct { u64 start, len, mode, ioctls; } reg = { v[i].start, v[i].end - v[i].start, 1 /* MISSING */, 0 };
		if (!v[i].uffd || S3(NR_ioctl, uffd, 0xc020aa00 /* UFFDIO_REGISTER */, &reg) == 0)
			continue;
		uffd_unregister(uffd, v, i);
		goto no;
	}
	return uffd;
no:
	S1(NR_close, uffd);
	return -1;
}

/* a page of the image equal to the one in place? (8 bytes at a time; no libc) */
static int same_page(const volatile u64 *a, const u64 *b)
{
	u64 i;
	for (i = 0; i < PAGE / 8; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/*
 * Pages to overwrite, gathered in ranges: writing a page still shared with another task is a
 * copy-on-write fault, and each such fault flushes the TLB on every CPU the mm ran on (costly
 * in a VM). A range is dropped first (MADV_DONTNEED: one flush for the whole range; a private
 * file page reads as the file again) and then written: faults on empty entries flush nothing.
 */
struct overwrite {
	u64 dst, src, npages;
	/* the pages lie on huge pages (COW_HUGE): a drop would take the whole huge page, the
	   write copies it (the pages left as they are keep the content they had) */
	u64 huge;
};

static void overwrite_flush(struct ctx *c, struct overwrite *o)
{
	u64 i, n = o->npages * PAGE / 8;
	volatile u64 *d = (volatile u64 *)o->dst;
	const u64 *s = (const u64 *)o->src;
	if (!o->npages)
		return;
	if (!o->huge)
		chk(c, S3(NR_madvise, o->dst, o->npages * PAGE, 4 /* MADV_DONTNEED */), o->dst);
	if (o->npages >= 16)
		S3(NR_madvise, o->dst, o->npages * PAGE, 23 /* MADV_POPULATE_WRITE */);
	for (i = 0; i < n; i++)
		d[i] = s[i];
	o->npages = 0;
}

/* page dst gets the content at src (a page of a mapping that stays until the next flush) */
static void overwrite_page(struct ctx *c, struct overwrite *o, u64 dst, u64 src)
{
	if (o->npages && o->dst + o->npages * PAGE == dst && o->src + o->npages * PAGE == src) {
		o->npages++;
		return;
	}
	overwrite_flush(c, o);
	o->dst = dst;
	o->src = src;
	o->npages = 1;
}

/* Run r lies in an area this task took over from its parent (inherit): its pages are there
   already, shared copy-on-write with the parent. Only the pages whose content differs from the
   image are written; the others stay shared, as a fork left them. The image is read through a
   read-only mapping of the pages image, a PAGE_CHUNK at a time. */
static void compare_run(struct ctx *c, const struct plan_run *r, long pfd)
{
	u64 done = 0, total = r->npages * PAGE, same = 0;

	while (done < total) {
		u64 len = total - done < PAGE_CHUNK ? total - done : PAGE_CHUNK, p;
		long src = chk(c, S6(NR_mmap, 0, len, 1 /* PROT_READ */, 0x02 | 0x8000 /* MAP_PRIVATE | MAP_POPULATE */, pfd, r->off + done), r->vaddr + done);
		struct overwrite o = { 0, 0, 0, r->cmp & COW_HUGE };
		for (p = 0; p < len; p += PAGE) {
			volatile u64 *dst = (volatile u64 *)(r->vaddr + done + p);
			const u64 *img = (const u64 *)((u64)src + p);
			if (same_page(dst, img)) {
				same++;
				continue;
			}
			overwrite_page(c, &o, (u64)dst, (u64)img);
		}
		overwrite_flush(c, &o);
		S2(NR_munmap, src, len);
		done += len;
	}
	c->st->cmp_pages += r->npages;
	c->st->cow_pages += same;
}

/* the run of task t holding address a, or 0 (the plan keeps runs sorted by address) */
static const struct plan_run *run_at(struct ctx *c, const struct plan_task *t, u64 a)
{
	const struct plan_run *r = AT(c, t->runs_off);
	u64 lo = 0, hi = t->nruns;
	while (lo < hi) {
		u64 m = (lo + hi) / 2;
		if (r[m].vaddr + r[m].npages * PAGE <= a)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < t->nruns && r[lo].vaddr <= a ? &r[lo] : 0;
}

/* the pages image of run r of task t, kept open while consecutive runs share it */
static long image_fd(struct ctx *c, const struct plan_task *t, const struct plan_run *r, u64 *cur, long *fd)
{
	u64 path = r->path ? r->path : t->pages_path;
	if (path != *cur) {
		if (*fd >= 0)
			S1(NR_close, *fd);
		*fd = chk(c, xopen(STR(c, path), O_RDONLY), r->vaddr);
		*cur = path;
	}
	return *fd;
}

/*
 * Before this task forks its child `ci`: pages the child and the next child share, with content
 * other than this task's, are laid over this task's own page (a new page of its own), so that
 * both children inherit that one page, as when the two were forked before their parent wrote
 * its page. Only where the child's run may be laid (COW_LAY: this task's area is writable) and
 * the next child's run lies in an area it takes over too. Returns the pages laid.
 */
u64 lay_for_child(struct ctx *c, u64 ci)
{
	struct plan_task *tasks = AT(c, c->h->tasks_off), *ct = &tasks[ci], *nt = 0;
	const struct plan_run *r = AT(c, ct->runs_off);
	u64 i, j, laid = 0, ccur = ~0ULL, ncur = ~0ULL;
	long cfd = -1, nfd = -1;
	u64 buf[PAGE / 8];

	for (j = ci + 1; j < c->h->ntasks; j++)
		if (tasks[j].parent == ct->parent && !tasks[j].zombie && !tasks[j].via_helper) {
			nt = &tasks[j];
			break;
		}
	if (!nt)
		return 0;
	for (i = 0; i < ct->nruns; i++) {
		u64 done = 0, total = r[i].npages * PAGE;
		if ((r[i].cmp & COW_MASK) != COW_LAY)
			continue;
		image_fd(c, ct, &r[i], &ccur, &cfd);
		while (done < total) {
			u64 len = total - done < PAGE_CHUNK ? total - done : PAGE_CHUNK, p;
			long src = chk(c, S6(NR_mmap, 0, len, 1 /* PROT_READ */, 0x02 | 0x8000 /* MAP_PRIVATE | MAP_POPULATE */, cfd, r[i].off + done), r[i].vaddr + done);
			struct overwrite o = { 0, 0, 0, r[i].cmp & COW_HUGE };
			for (p = 0; p < len; p += PAGE) {
				u64 a = r[i].vaddr + done + p;
				const u64 *img = (const u64 *)((u64)src + p);
				const struct plan_run *nr;
				long n;
				if (same_page((volatile u64 *)a, img))
					continue;
				nr = run_at(c, nt, a);
				if (!nr || (nr->cmp & COW_MASK) != COW_LAY)
					continue;
				n = S4(NR_pread64, image_fd(c, nt, nr, &ncur, &nfd), buf, PAGE, nr->off + (a - nr->vaddr));
				if (n != (long)PAGE || !same_page((volatile u64 *)buf, img))
					continue;
				overwrite_page(c, &o, a, (u64)img);
				laid++;
			}
			overwrite_flush(c, &o);
			S2(NR_munmap, src, len);
			done += len;
		}
	}
	if (cfd >= 0)
		S1(NR_close, cfd);
	if (nfd >= 0)
		S1(NR_close, nfd);
	return laid;
}

/* After the children are forked, when pages were laid for them: this task's own pages again */
void refill_after_fork(struct ctx *c)
{
	const struct plan_run *r = AT(c, c->t->runs_off);
	const struct plan_guard *d = AT(c, c->t->late_drops_off);
	u64 i, cur = ~0ULL;
	long fd = -1;

	for (i = 0; i < c->t->nruns; i++) {
		u64 done = 0, total = r[i].npages * PAGE;
		if (!r[i].refill)
			continue;
		image_fd(c, c->t, &r[i], &cur, &fd);
		while (done < total) {
			u64 len = total - done < PAGE_CHUNK ? total - done : PAGE_CHUNK, p;
			long src = chk(c, S6(NR_mmap, 0, len, 1 /* PROT_READ */, 0x02 | 0x8000 /* MAP_PRIVATE | MAP_POPULATE */, fd, r[i].off + done), r[i].vaddr + done);
			struct overwrite o = { 0, 0, 0, r[i].cmp & COW_HUGE };
			for (p = 0; p < len; p += PAGE) {
				volatile u64 *dst = (volatile u64 *)(r[i].vaddr + done + p);
				const u64 *img = (const u64 *)((u64)src + p);
				if (!same_page(dst, img))
					overwrite_page(c, &o, (u64)dst, (u64)img);
			}
			overwrite_flush(c, &o);
			S2(NR_munmap, src, len);
			done += len;
		}
	}
	if (fd >= 0)
		S1(NR_close, fd);
	for (i = 0; i < c->t->nlate_drops; i++)
		chk(c, S3(NR_madvise, d[i].start, d[i].end - d[i].start, 4 /* MADV_DONTNEED */), d[i].start);
}

/* the parent's pages this task's image does not have, in areas taken over: gone again (an
   anonymous page reads as zeros, a private file page as the file) */
static void drop_pages(struct ctx *c)
{
	const struct plan_guard *d = AT(c, c->t->drops_off);
	u64 i;
	for (i = 0; i < c->t->ndrops; i++)
		chk(c, S3(NR_madvise, d[i].start, d[i].end - d[i].start, 4 /* MADV_DONTNEED */), d[i].start);
}

/* len bytes of the pages image at off into dst, however many reads it takes */
static void read_at(struct ctx *c, long pfd, u8 *dst, u64 len, u64 off, u64 vaddr)
{
	while (len) {
		long n = S4(NR_pread64, pfd, dst, len, off);
		if (n == -EINTR)
			continue;
		chk(c, n, vaddr);
		if (n == 0)
			fail(c, EIO, vaddr); /* pages image shorter than its pagemap */
		dst += n;
		off += (u64)n;
		len -= (u64)n;
	}
}

/* runs below this many pages may share one preadv */
#define POPULATE_PAGES 64
#define READ_BATCH 128

/*
 * Run i and the small runs after it that follow it in the same pages image (consecutive offsets),
 * read with one preadv: a process of many small areas (a page or two each) is otherwise one
 * system call per area. Returns how many runs were read (at least 1).
 */
static u64 read_small_runs(struct ctx *c, const struct plan_run *r, u64 i, u64 nruns, long uffd, long pfd)
{
	struct { u64 base, len; } iov[READ_BATCH];
	u64 n = 0, off = r[i].off, end = r[i].off, k;
	long got;

	while (i + n < nruns && n < READ_BATCH) {
		const struct plan_run *x = &r[i + n];
		if (n && (x->off != end || x->path != r[i].path || (x->uffd && uffd >= 0) ||
			  (x->cmp & COW_COMPARE) || x->npages >= POPULATE_PAGES))
			break;
		iov[n].base = x->vaddr;
		iov[n].len = x->npages * PAGE;
		end += iov[n].len;
		n++;
	}
	/* the batch's pages faulted in bulk first, a madvise per stretch of adjacent runs: a fault
	   taken inside the read costs more than populating the page (several times more where
	   faults go through a hypervisor), even for a stretch of one page */
	for (k = 0; k < n;) {
		u64 from = iov[k].base, to = iov[k].base + iov[k].len;
		for (k++; k < n && iov[k].base == to; k++)
			to += iov[k].len;
		S3(NR_madvise, from, to - from, 23 /* MADV_POPULATE_WRITE */);
	}
	do
		got = S5(NR_preadv, pfd, iov, n, off, 0);
	while (got == -EINTR);
	chk(c, got, r[i].vaddr);
	/* what a short read left: run by run, as one read each */
	for (k = 0; k < n; k++) {
		u64 done = (u64)got < iov[k].len ? (u64)got : iov[k].len;
		if (done < iov[k].len)
			read_at(c, pfd, (u8 *)(iov[k].base + done), iov[k].len - done, r[i + k].off + done, r[i + k].vaddr);
		got -= (long)done;
	}
	return n;
}

static void restore_pages(struct ctx *c)
{
	struct plan_run *r = AT(c, c->t->runs_off);
	volatile struct plan_status *st = c->st;
	u64 i, k, nchunks = 0, cur = ~0ULL;
	long pfd = -1, uffd = -1;

	for (i = 0; i < c->t->nruns; i++)
		if (r[i].uffd)
			nchunks += run_chunks(&r[i]);
	if (nchunks)
		uffd = uffd_setup(AT(c, c->t->vmas_off), c->t->nvmas);
	if (uffd >= 0) {
		volatile u32 *pub = (volatile u32 *)(c->h->status_addr + STATUS_PUB_OFF);
		st->uffd = (u64)uffd;
		st->chunks = nchunks;
		__atomic_store_n(&st->claimed, 0, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(pub, 1, __ATOMIC_SEQ_CST);
		S3(NR_futex, pub, FUTEX_WAKE, 0x7fffffff);
		while ((k = __atomic_fetch_add(&st->claimed, 1, __ATOMIC_SEQ_CST)) < nchunks) {
			u64 at = 0, len = 0;
			i = chunk_at(r, c->t->nruns, k, &at, &len);
			if (i >= c->t->nruns)
				fail(c, EINVAL, k);
			chk(c, copy_chunk(uffd, pages_fd(c, &r[i], &cur, &pfd), r[i].vaddr + at, r[i].off + at, len), r[i].vaddr + at);
			__atomic_add_fetch(&st->copied, 1, __ATOMIC_SEQ_CST);
		}
	}
	for (i = 0; i < c->t->nruns; i++) {
		u8 *dst = (u8 *)r[i].vaddr;
		u64 left = r[i].npages * PAGE, off = r[i].off;
		if (r[i].uffd && uffd >= 0)
			continue;
		pages_fd(c, &r[i], &cur, &pfd);
		if (r[i].cmp & COW_COMPARE) {
			set_step(c, STEP_COW);
			compare_run(c, &r[i], pfd);
			set_step(c, STEP_PAGES);
			continue;
		}
		if (left < POPULATE_PAGES * PAGE) {
			i += read_small_runs(c, r, i, c->t->nruns, uffd, pfd) - 1;
			continue;
		}
		/* fault the pages in bulk first: much cheaper than one fault per page inside pread
		   (older kernels without MADV_POPULATE_WRITE just fault as before) */
		S3(NR_madvise, dst, left, 23 /* MADV_POPULATE_WRITE */);
		read_at(c, pfd, dst, left, off, r[i].vaddr);
	}
	if (pfd >= 0)
		S1(NR_close, pfd);
	if (uffd < 0)
		return;
	/* pieces the launcher took: wait until it has copied them, and for its verdict */
	for (;;) {
		u32 done = __atomic_load_n((volatile u32 *)&st->copied, __ATOMIC_SEQ_CST);
		if (done >= nchunks)
			break;
		chk(c, wait_change(c, (volatile u32 *)&st->copied, done), 0);
	}
	if (st->help_err)
		fail(c, st->help_err, 0);
	uffd_unregister(uffd, AT(c, c->t->vmas_off), c->t->nvmas);
	S1(NR_close, uffd);
}

/*
 * --lazy-pages, once the children are forked (a fork would not carry the registration over, and
 * with UFFD_FEATURE_EVENT_FORK each of the blob's own forks would wait for the daemon): a
 * userfaultfd of this task, with the events of a task that forks, remaps, unmaps or drops pages
 * while pages are still missing, and every lazy area registered for missing pages. The launcher
 * takes a copy (pidfd_getfd, through the status record: fd + 1) and hands it to the lazy-pages
 * daemon; the blob closes its own after "go" (lazy_close). Faults from the kernel (a read(2)
 * into a missing page) wait for the daemon too: no UFFD_USER_MODE_ONLY here.
 */
void lazy_register(struct ctx *c)
{
	const struct plan_vma *v = AT(c, c->t->vmas_off);
	u64 api[3] = { 0xAA, (1 << 1) | (1 << 2) | (1 << 3) | (1 << 6) /* EVENT_FORK | REMAP | REMOVE | UNMAP */, 0 }, i;
	long uffd;

	if (!c->h->lazy)
		return;
	set_step(c, STEP_PAGES);
	uffd = chk(c, S1(NR_userfaultfd, 02000000 | 04000 /* O_CLOEXEC | O_NONBLOCK */), 0);
	chk(c, S3(NR_ioctl, uffd, 0xc018aa3f /* UFFDIO_API */, api), 1);
	for (i = 0; i < c->t->nvmas; i++) {
		struct { u64 start, len, mode, ioctls; } reg = { v[i].start, v[i].end - v[i].start, 1 /* MISSING */, 0 };
		if (v[i].lazy && v[i].kind != VMA_SKIP)
			chk(c, S3(NR_ioctl, uffd, 0xc020aa00 /* UFFDIO_REGISTER */, &reg), v[i].start);
	}
	c->st->lazy_uffd = (u64)uffd + 1;
}

/* after "go": the daemon has its copy */
void lazy_close(struct ctx *c)
{
	if (c->st->lazy_uffd)
		S1(NR_close, c->st->lazy_uffd - 1);
}

/* where special mapping i of this task is now: where the launcher has it (the root), or where
   the parent left it before forking this task (its place, or parked in the region) */
static u64 special_now(struct ctx *c, u64 i)
{
	struct plan_task *tasks = AT(c, c->h->tasks_off);
	struct plan_special *psp;
	if (c->t->mm_parent == NO_PARENT)
		return ((struct plan_special *)AT(c, c->t->special_off))[i].start;
	psp = AT(c, tasks[c->t->mm_parent].special_off);
	return psp[i].start;
}

/* unmap [a, b) but the restorer's region */
static void unmap_but_region(struct ctx *c, u64 a, u64 b)
{
	u64 rs = c->h->region_start, re = c->h->region_end;
	if (a < rs && b > a)
		chk(c, S2(NR_munmap, a, (b < rs ? b : rs) - a), a);
	if (b > re && b > a) {
		u64 from = a > re ? a : re;
		chk(c, S2(NR_munmap, from, b - from), from);
	}
}

/*
 * The address space, up to its pages: run before the task forks its children, which inherit it
 * (an area a child takes over keeps its pages shared copy-on-write, see compare_run). The task
 * itself runs on what its parent (or, for the root, the launcher) left: it keeps the areas it
 * takes over and the region, and drops the rest.
 */
/* the advice the area had (madvise(2) of each bit of its madv word), once it is mapped */
static void advise(struct ctx *c, const struct plan_vma *v)
{
	u64 b;
	for (b = 0; b < 32; b++)
		if (v->madv & (1ULL << b))
			chk(c, S3(NR_madvise, v->start, v->end - v->start, b), v->start);
}

/*
 * Area i and the next one are private anonymous areas mapped alike (protection while filled,
 * flags), side by side, neither taken over from the parent: the kernel merges such areas into
 * one as they are mapped one by one (none has pages yet), so they are mapped with one mmap.
 * (Those that differ in what makes areas distinct — protections, advice, names — are split
 * again by the later mprotect and madvise calls, as they would split the merged area.)
 */
static int groups_with_next(const struct plan_vma *v, u64 n, u64 i)
{
	const u64 odd = MAP_SHARED | MAP_GROWSDOWN | MAP_HUGETLB;
	return i + 1 < n && v[i].kind == VMA_ANON && v[i + 1].kind == VMA_ANON && !v[i].inherit &&
	       !v[i + 1].inherit && v[i + 1].start == v[i].end && v[i + 1].map_prot == v[i].map_prot &&
	       v[i + 1].flags == v[i].flags && !(v[i].flags & odd);
}

/* the areas from i on that group (groups_with_next), mapped at once; returns the last one's index */
static u64 map_anon_group(struct ctx *c, const struct plan_vma *v, u64 n, u64 i)
{
	u64 j = i, k;
	long a;
	while (groups_with_next(v, n, j))
		j++;
	a = chk(c, S6(NR_mmap, v[i].start, v[j].end - v[i].start, v[i].map_prot, v[i].flags | MAP_FIXED | MAP_ANONYMOUS, -1, 0), v[i].start);
	if ((u64)a != v[i].start)
		fail(c, EINVAL, v[i].start);
	for (k = i; k <= j; k++)
		advise(c, &v[k]);
	return j;
}

void restore_mm(struct ctx *c)
{
	struct plan_hdr *h = c->h;
	struct plan_special *sp = AT(c, c->t->special_off);
	struct plan_vma *v = AT(c, c->t->vmas_off);
	struct plan_task *tasks = AT(c, h->tasks_off);
	struct plan_vma *pv = c->t->mm_parent == NO_PARENT ? 0 : AT(c, tasks[c->t->mm_parent].vmas_off);
	u64 i, park = h->park_addr, at;

	/* [vvar], [vvar_vclock], [vdso]: park inside our region, drop the rest, then put them in place
	   (one that this task does not have stays parked until restore_mm_late: a child may need it) */
	set_step(c, STEP_VDSO);
	for (i = 0; i < c->t->nspecial; i++) {
		u64 len = sp[i].end - sp[i].start, now = special_now(c, i);
		if (now != park)
			chk(c, S5(NR_mremap, now, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, park), i);
		sp[i].start = park;
		sp[i].end = park + len;
		park += len;
	}
	set_step(c, STEP_UNMAP);
	at = 0;
	for (i = 0; i < c->t->nvmas; i++) {
		if (!v[i].inherit)
			continue;
		unmap_but_region(c, at, v[i].start);
		at = v[i].end;
	}
	unmap_but_region(c, at, TASK_TOP);
	set_step(c, STEP_VDSO);
	for (i = 0; i < c->t->nspecial; i++) {
		u64 len = sp[i].end - sp[i].start;
		if (sp[i].target == ~0ULL)
			continue;
		chk(c, S5(NR_mremap, sp[i].start, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, sp[i].target), i);
		sp[i].start = sp[i].target; /* where a child finds it (special_now) */
		sp[i].end = sp[i].target + len;
	}

	set_step(c, STEP_MMAP);
	for (i = 0; i < c->t->nvmas; i++) {
		u64 len = v[i].end - v[i].start;
		long fd = -1, a;
		u64 prot = v[i].map_prot;
		if (groups_with_next(v, c->t->nvmas, i)) {
			i = map_anon_group(c, v, c->t->nvmas, i);
			continue;
		}
		if (v[i].kind == VMA_SKIP)
			continue;
		if (v[i].inherit) {
			/* the parent's area, pages and advice included: only its protection may differ */
			if (pv[v[i].inherit - 1].map_prot != prot)
				chk(c, S3(NR_mprotect, v[i].start, len, prot), v[i].start);
			continue;
		}
		if (v[i].kind == VMA_ANON) {
			a = S6(NR_mmap, v[i].start, len, prot, v[i].flags | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
		} else if (v[i].kind == VMA_SOCKET) {
			/* a packet socket's rings: the place held (inaccessible, nothing charged) until the
			   task's descriptors exist (restore_mm_late maps the rings over it) */
			a = S6(NR_mmap, v[i].start, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
			chk(c, a, v[i].start);
			continue;
		} else if (v[i].kind == VMA_SYSV) {
			/* the segment of the task's IPC namespace, attached whole at its address, once the
			   launcher has made the namespace's segments (the ns word: 1 made, 2 abort) */
			volatile u32 *ns = (volatile u32 *)(c->h->status_addr + STATUS_NS_OFF);
			chk(c, wait_change(c, ns, 0), v[i].start);
			if (*ns != 1)
				for (;;)
					S1(NR_exit_group, 71);
			a = S3(NR_shmat, v[i].shmid, v[i].start, v[i].open_flags);
		} else {
			fd = chk(c, xopen(STR(c, v[i].path), v[i].open_flags), v[i].start);
			check_size(c, fd, v[i].file_size, v[i].start);
			a = S6(NR_mmap, v[i].start, len, prot, (v[i].flags & ~(u64)MAP_ANONYMOUS) | MAP_FIXED, fd, v[i].pgoff);
			S1(NR_close, fd);
		}
		chk(c, a, v[i].start);
		if ((u64)a != v[i].start)
			fail(c, EINVAL, v[i].start);
		advise(c, &v[i]);
	}

	set_step(c, STEP_COW);
	drop_pages(c);
	set_step(c, STEP_PAGES);
	restore_pages(c);
}

/* After the children are forked: what they must not inherit (their own pages differ there) */
/*
 * AIO rings. The dumped ring's pages are in a private anonymous area at its address; the
 * kernel's context is made again with io_setup (the same number of events, so the same ring
 * size), brought to the dumped head and tail, given the dumped events, and moved over the area
 * with mremap (the kernel follows the move: the context id is the ring's address again). The
 * kernel keeps its own count of the ring's tail: only completed requests move it, so as many
 * one-byte writes to /dev/null as the dumped tail took (a full turn more when it wrapped) are
 * submitted, complete at once, and are reaped by setting head, which the kernel reads from the
 * ring. The header (32 bytes: id, nr, head, tail, magic, features, header length) is the new
 * ring's; the events after it are the dumped ones.
 */
struct aio_ring_hdr {
	u32 id, nr, head, tail, magic, compat, incompat, header_length;
};

struct aio_iocb {
	u64 data;
	u32 key, rw_flags;
	u16 opcode;
	u16 reqprio;
	u32 fildes;
	u64 buf, nbytes;
	s64 offset;
	u64 reserved2;
	u32 flags, resfd;
};

static void restore_aio_ring(struct ctx *c, const struct plan_aio *a)
{
	volatile struct aio_ring_hdr *old = (volatile struct aio_ring_hdr *)a->addr, *ring;
	u32 head = old->head, tail = old->tail, nr = old->nr;
	u64 ctx = 0, count, done = 0, i, batch;
	long r;

	chk(c, S2(NR_io_setup, a->nr_req, &ctx), a->addr);
	ring = (volatile struct aio_ring_hdr *)ctx;
	if (nr != (a->len - sizeof(struct aio_ring_hdr)) / 32 || ring->nr != nr || head >= nr || tail >= nr)
		fail(c, EINVAL, a->addr); /* not the ring size the dump saw, or a ring not sane */
	count = tail < head ? (u64)nr + tail : tail;
	if (count) {
		/* at most nr - 1 requests wait in a ring at once: submitted in batches, reaped between */
		u64 most = nr - 1, size = sizeof(struct aio_iocb) + most * 8;
		struct aio_iocb *cb;
		u64 *list;
		char byte = 0;
		long fd = chk(c, xopen("/dev/null", O_WRONLY), a->addr);
		cb = (struct aio_iocb *)chk(c, S6(NR_mmap, 0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), a->addr);
		list = (u64 *)(cb + 1);
		memset(cb, 0, sizeof(*cb));
		cb->opcode = 1; /* IOCB_CMD_PWRITE */
		cb->fildes = (u32)fd;
		cb->buf = (u64)&byte;
		cb->nbytes = 1;
		for (i = 0; i < most; i++)
			list[i] = (u64)cb;
		while (done < count) {
			batch = count - done < most ? count - done : most;
			r = chk(c, S3(NR_io_submit, ctx, batch, list), a->addr);
			if (r == 0)
				fail(c, EAGAIN, a->addr);
			done += (u64)r;
			/* reaped: as io_getevents would, up to the dumped head */
			ring->head = done < head ? (u32)done : head;
		}
		S2(NR_munmap, cb, size);
		S1(NR_close, fd);
	}
	if (ring->tail != tail || ring->head != head)
		fail(c, EINVAL, a->addr);
	memcpy((void *)(ctx + sizeof(struct aio_ring_hdr)), (const void *)(a->addr + sizeof(struct aio_ring_hdr)), a->len - sizeof(struct aio_ring_hdr));
	r = S5(NR_mremap, ctx, a->len, a->len, MREMAP_MAYMOVE | MREMAP_FIXED, a->addr);
	if ((u64)r != a->addr)
		fail(c, r < 0 && r > -4096 ? (u64)-r : EINVAL, a->addr);
}

void restore_mm_late(struct ctx *c)
{
	struct plan_special *sp = AT(c, c->t->special_off);
	struct plan_vma *v = AT(c, c->t->vmas_off);
	u64 i;

	set_step(c, STEP_PAGES);
	{
		/* single words the plan re-points (e.g. GOT slots after a move to another CPU) */
		const u64 *p = AT(c, c->t->patches_off);
		for (i = 0; i < c->t->npatches; i++)
			*(volatile u64 *)p[2 * i] = p[2 * i + 1];
	}

	set_step(c, STEP_AIO);
	{
		const struct plan_aio *a = AT(c, c->t->aios_off);
		for (i = 0; i < c->t->naios; i++)
			restore_aio_ring(c, &a[i]);
	}

	set_step(c, STEP_MMAP);
	for (i = 0; i < c->t->nvmas; i++) {
		/* a packet socket's rings, mapped from the task's descriptor of the socket (shmid) over
		   the place held for them: the kernel maps them whole, RX then TX, with its own pages */
		u64 len = v[i].end - v[i].start;
		long a;
		if (v[i].kind != VMA_SOCKET)
			continue;
		a = chk(c, S6(NR_mmap, v[i].start, len, v[i].prot, (v[i].flags & ~(u64)MAP_ANONYMOUS) | MAP_FIXED, v[i].shmid, 0), v[i].start);
		if ((u64)a != v[i].start)
			fail(c, EINVAL, v[i].start);
		advise(c, &v[i]);
	}

	set_step(c, STEP_MPROTECT);
	for (i = 0; i < c->t->nvmas; i++)
		if (v[i].kind != VMA_SKIP && v[i].map_prot != v[i].prot)
			chk(c, S3(NR_mprotect, v[i].start, v[i].end - v[i].start, v[i].prot), v[i].start);

	set_step(c, STEP_VDSO);
	for (i = 0; i < c->t->nspecial; i++)
		if (sp[i].target == ~0ULL)
			chk(c, S2(NR_munmap, sp[i].start, sp[i].end - sp[i].start), i);

	/* guard regions last: their pages were never dumped, and the areas have their final
	 * protections (installing zaps whatever the range holds, so nothing may be written after) */
	set_step(c, STEP_GUARDS);
	{
		const struct plan_guard *g = AT(c, c->t->guards_off);
		for (i = 0; i < c->t->nguards; i++)
			chk(c, S3(NR_madvise, g[i].start, g[i].end - g[i].start, MADV_GUARD_INSTALL), g[i].start);
	}
}

struct prctl_mm_map {
	u64 start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start, arg_end, env_start,
		env_end, auxv;
	u32 auxv_size, exe_fd;
};

void restore_mm_struct(struct ctx *c)
{
	struct plan_task *t = c->t;
	struct prctl_mm_map m;
	long exe = -1;

	set_step(c, STEP_EXE);
	if (t->exe_path) {
		u64 want[18], have[18];
		long self;
		exe = chk(c, xopen(STR(c, t->exe_path), O_RDONLY), 0);
		/* the task already runs that very file (e.g. a Node program restored by crtools' Node):
		   leave exe alone, the kernel refuses to replace an exe that is still mapped (EBUSY) */
		self = xopen("/proc/self/exe", O_RDONLY);
		if (self >= 0) {
			if (S2(NR_fstat, exe, want) == 0 && S2(NR_fstat, self, have) == 0 && want[0] == have[0] && want[1] == have[1]) {
				S1(NR_close, exe);
				exe = -1;
			}
			S1(NR_close, self);
		}
	}
	set_step(c, STEP_MM);
	m.start_code = t->mm_start_code;
	m.end_code = t->mm_end_code;
	m.start_data = t->mm_start_data;
	m.end_data = t->mm_end_data;
	m.start_brk = t->mm_start_brk;
	m.brk = t->mm_brk;
	m.start_stack = t->mm_start_stack;
	m.arg_start = t->mm_arg_start;
	m.arg_end = t->mm_arg_end;
	m.env_start = t->mm_env_start;
	m.env_end = t->mm_env_end;
	m.auxv = (u64)AT(c, t->auxv_off);
	m.auxv_size = (u32)t->auxv_bytes;
	m.exe_fd = (u32)exe;
	chk(c, S5(NR_prctl, PR_SET_MM, PR_SET_MM_MAP, &m, sizeof(m), 0), 0);
	if (exe >= 0)
		S1(NR_close, exe);
	restore_dumpable(c, 0);
	if (t->personality != 0xffffffffULL)
		chk(c, S1(NR_personality, t->personality), 0);
}
