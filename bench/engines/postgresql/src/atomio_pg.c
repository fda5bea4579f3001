/*-------------------------------------------------------------------------
 *
 * atomio_pg.c
 *	  Untorn relation page writes through libatomio.
 *
 * Processes.  The postmaster opens the first libatomio context before it
 * forks the checkpointer, the background writer and the startup process, so
 * the doublewrite store in $PGDATA/pg_atomio is recovered before anything can
 * read a page for redo.  After a crash of a child the postmaster recovers the
 * store again on that same context, once every child is gone and before the
 * next startup process is forked.  Every child opens a context of its own the
 * first time it needs one (a context is never used across fork()); it joins
 * the running instance and never recovers.
 *
 * Files.  Each segment of a permanent relation fork is opened through
 * libatomio by path (ATOMIO_IO_BUFFERED, BLCKSZ pages) and cached per process.
 * Temporary relations (discarded after a crash) and unlogged relations (reset
 * from their init fork after a crash), including init forks themselves (which
 * are WAL-logged as full images and synced at creation), stay on md.c's plain
 * path: torn pages there are never read back.  Every write of a protected
 * segment, including extension, goes through the library, so no store copy
 * can be applied over a newer write that bypassed it.  Before md truncates or
 * unlinks a segment, it is synced and fenced (atomio_file_fence()): none of
 * its older copies is ever applied again, to it or to a later file of the
 * same name.
 *
 * Write-behind.  With atomio_write_behind (the default) every context opens
 * in ATOMIO_DOUBLEWRITE_WRITE_BEHIND mode: a doublewrite returns once the
 * page is copied into the instance's shared staging, and group commits later
 * write the staged pages of all processes to the store and then in place.
 * Until then a page is not in its file, so md's reads of protected segments
 * go through atomio_read(), which sees staged pages; a page written by
 * extension is first extended with zeros in the file, so that md's file
 * sizes stay right; copydir flushes the staging before it reads, and the
 * rmtree of database directories fences the directory (which flushes)
 * before it removes.
 * atomio_sync(), atomio_ctx_sync() and atomio_file_fence() flush it
 * themselves, so the checkpoint's syncs, truncation and unlink need nothing
 * more.
 *
 * src/backend/storage/smgr/atomio_pg.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "atomio.h"

#include "access/xlog.h"
#include "catalog/pg_tablespace_d.h"
#include "common/hashfn.h"
#include "common/relpath.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "storage/atomio_pg.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/sync.h"
#include "utils/memutils.h"
#include "utils/resowner_private.h"
#include "utils/wait_event.h"

bool		atomio_enabled = false;
int			atomio_store_size_mb = 256;
bool		atomio_write_behind = true;
int			atomio_write_behind_size_mb = 0;

/* ---------------------------------------------------------------------------
 * Context
 */
static atomio_ctx *my_ctx = NULL;
static int	my_ctx_pid = 0;
static bool my_ctx_durable = true;
/*
 * The process that registered atomio_pg_exit: a child inherits this variable
 * from the postmaster but not the registration (on_exit_reset() clears it).
 */
static int	my_exit_registered_pid = 0;
static char store_dir[MAXPGPATH];
static char instance_name[64];

/*
 * Copies recovery cannot apply (a file missing, an unknown id) are kept and
 * named here; recovery then fails, and the postmaster refuses to start.  md
 * and the rmtree of database directories fence files before they go, so
 * their copies never get here.
 */
static void
log_unapplied(void *arg, uint64_t file_id, const char *path, uint64_t pages, int err)
{
	ereport(LOG,
			(errmsg("atomio: recovery kept %llu page copies of file id %llu (%s): %s",
					(unsigned long long) pages, (unsigned long long) file_id,
					path ? path : "unknown path", atomio_strerror(err))));
}

static void
fill_ctx_opts(atomio_ctx_opts *co, uint32 flags)
{
	atomio_ctx_opts_init(co);
	snprintf(store_dir, sizeof(store_dir), "%s/pg_atomio", DataDir);
	snprintf(instance_name, sizeof(instance_name), "postgresql-%llu",
			 (unsigned long long) GetSystemIdentifier());
	co->flags = flags;
	if (!enableFsync)
		co->flags |= ATOMIO_CTX_NO_DURABILITY;
	co->doublewrite_dir = store_dir;
	/*
	 * Every relation file is written through the page cache, which the library
	 * does with pwritev2 whatever the submitter: an io_uring ring would only
	 * cost each new connection its setup.
	 */
	co->submitter = ATOMIO_SUBMIT_SYNC;
	co->data_root = DataDir;
	co->instance = instance_name;
	/* every process of the instance opens with the same mode (PGC_POSTMASTER) */
	co->doublewrite_mode = atomio_write_behind ?
		ATOMIO_DOUBLEWRITE_WRITE_BEHIND : ATOMIO_DOUBLEWRITE_DEFERRED;
	co->write_behind_bytes = atomio_write_behind ?
		(uint64) atomio_write_behind_size_mb << 20 : 0;
	/* every relation page is BLCKSZ: staging slots and records sized for it */
	co->doublewrite_max_page_size = BLCKSZ;
	co->doublewrite_store_bytes = (uint64) atomio_store_size_mb << 20;
	co->unapplied = log_unapplied;
}

static void close_all_segs(void);
static int	batch_pending_count(void);

static void
atomio_pg_exit(int code, Datum arg)
{
	if (my_ctx != NULL && my_ctx_pid == MyProcPid)
	{
		atomio_stats st = ATOMIO_STATS_INIT;

		/* a backend's own share of write-behind, for tests (log_min_messages) */
		if (atomio_write_behind && atomio_ctx_get_stats(my_ctx, &st) == 0)
			elog(DEBUG1, "atomio: process exit: pages_staged=%llu staged_reads=%llu",
				 (unsigned long long) st.pages_staged,
				 (unsigned long long) st.staged_reads);
		close_all_segs();
		(void) atomio_ctx_close(my_ctx);
	}
	my_ctx = NULL;
}

static int
elevel_for(int r)
{
	switch (r)
	{
		case ATOMIO_E_STORE_FAILED:
		case ATOMIO_E_STORE_FULL:
		case ATOMIO_E_SHORT_WRITE:
		case ATOMIO_E_FAILED:
			return PANIC;
		default:
			return ERROR;
	}
}

/* errno for a libatomio result, for errcode_for_file_access() and %m */
static int
errno_for(int r)
{
	return (r < 0 && r > -4096) ? -r : EIO;
}

/* This process's context, opened on first use. */
static atomio_ctx *
get_ctx(void)
{
	atomio_ctx_opts co;
	int			r;

	if (my_ctx != NULL && my_ctx_pid == MyProcPid)
		return my_ctx;

	/*
	 * A context inherited from the postmaster belongs to it: forget it
	 * without touching it, and open our own.
	 */
	my_ctx = NULL;
	fill_ctx_opts(&co, 0);
	r = atomio_ctx_open(&co, &my_ctx);
	if (r < 0)
	{
		my_ctx = NULL;
		ereport(elevel_for(r) == PANIC ? PANIC : ERROR,
				(errmsg("atomio: could not join the doublewrite store \"%s\": %s (%s)",
						store_dir, atomio_strerror(r), atomio_err_name(r)),
				 errdetail("%s", atomio_last_reason())));
	}
	my_ctx_pid = MyProcPid;
	my_ctx_durable = enableFsync;
	if (my_exit_registered_pid != MyProcPid)
	{
		on_proc_exit(atomio_pg_exit, 0);
		my_exit_registered_pid = MyProcPid;
	}
	return my_ctx;
}

/*
 * fsync can change at SIGHUP: follow it with the context's durability.  Our
 * cached files are closed so that each reopens with a fresh torn_write_safe.
 */
static void
follow_fsync(void)
{
	int			r;

	if (my_ctx == NULL || my_ctx_pid != MyProcPid || my_ctx_durable == enableFsync)
		return;
	if (batch_pending_count() > 0)
		return;
	close_all_segs();
	r = atomio_ctx_set_durability(my_ctx, enableFsync ? 1 : 0);
	if (r < 0)
	{
		errno = errno_for(r);
		ereport(data_sync_elevel(ERROR),
				(errcode_for_file_access(),
				 errmsg("atomio: could not switch durability %s: %s (%s)",
						enableFsync ? "on" : "off", atomio_strerror(r), atomio_err_name(r))));
	}
	my_ctx_durable = enableFsync;
	ereport(LOG, (errmsg("atomio: durability %s (fsync = %s)",
						 enableFsync ? "on" : "off", enableFsync ? "on" : "off")));
}

/*
 * Postmaster, before the checkpointer, background writer and startup process
 * are forked: open the first context of the instance and recover the store;
 * after a crash of a child (every child gone), recover it again.
 */
void
AtomioPgPostmasterStartup(void)
{
	atomio_recovery_report rep;
	atomio_ctx_opts co;
	struct stat st;
	char		mode[64];
	instr_time	start,
				took;
	int			r;

	if (my_ctx == NULL || my_ctx_pid != MyProcPid)
	{
		fill_ctx_opts(&co, ATOMIO_CTX_NO_RECOVER);
		if (stat(store_dir, &st) != 0)
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("atomio: doublewrite store directory \"%s\" is missing: %m",
							store_dir),
					 errhint("initdb creates it; for an existing cluster create it (mode 0700) while the server is stopped.")));
		r = atomio_ctx_open(&co, &my_ctx);
		if (r < 0)
			ereport(FATAL,
					(errmsg("atomio: could not open the doublewrite store \"%s\": %s (%s)",
							store_dir, atomio_strerror(r), atomio_err_name(r)),
					 errdetail("%s", atomio_last_reason())));
		my_ctx_pid = MyProcPid;
		if (my_exit_registered_pid != MyProcPid)
		{
			on_proc_exit(atomio_pg_exit, 0);
			my_exit_registered_pid = MyProcPid;
		}

		/*
		 * Probe the data directory's filesystem once, here: the library keeps
		 * its verdict per process, and every child forked from now on
		 * inherits it instead of making a scratch file of its own at its
		 * first write.  A failed probe only means each child probes.
		 */
		{
			atomio_caps caps = ATOMIO_CAPS_INIT;
			int			pr = atomio_probe(DataDir, BLCKSZ, &caps);

			if (pr < 0)
				elog(DEBUG1, "atomio: could not probe \"%s\": %s; each process will",
					 DataDir, atomio_strerror(pr));
		}
	}

	rep = (atomio_recovery_report) ATOMIO_RECOVERY_REPORT_INIT;
	INSTR_TIME_SET_CURRENT(start);
	r = atomio_ctx_recover(my_ctx, &rep);
	INSTR_TIME_SET_CURRENT(took);
	INSTR_TIME_SUBTRACT(took, start);
	if (r < 0)
		ereport(FATAL,
				(errmsg("atomio: recovery of the doublewrite store \"%s\" failed: %s (%s)",
						store_dir, atomio_strerror(r), atomio_err_name(r)),
				 errdetail("%s", atomio_last_reason()),
				 errhint("See \"Operations\" in libatomio's docs/integration.md before starting the server.")));
	if (!atomio_write_behind)
		snprintf(mode, sizeof(mode), "deferred");
	else if (atomio_write_behind_size_mb > 0)
		snprintf(mode, sizeof(mode), "write-behind, %d MB staging",
				 atomio_write_behind_size_mb);
	else
		snprintf(mode, sizeof(mode), "write-behind, default staging");
	ereport(LOG,
			(errmsg("atomio: doublewrite store \"%s\" recovered (instance %s, %u MB, %s, %s): "
					"%llu records scanned, %llu valid, %llu torn, %llu pages checked, "
					"%llu restored, %llu fenced, %llu discarded in %.3f s",
					store_dir, instance_name, atomio_store_size_mb, mode,
					enableFsync ? "durable" : "fsync=off: no protection",
					(unsigned long long) rep.batches_scanned,
					(unsigned long long) rep.batches_valid,
					(unsigned long long) rep.batches_torn,
					(unsigned long long) rep.pages_checked,
					(unsigned long long) rep.pages_restored,
					(unsigned long long) rep.pages_fenced,
					(unsigned long long) rep.pages_discarded,
					INSTR_TIME_GET_DOUBLE(took))));
}

/* ---------------------------------------------------------------------------
 * Per-process segment cache
 */
typedef struct AtomioSeg
{
	bool		in_use;
	bool		protect;		/* goes through libatomio */
	bool		safe;			/* torn_write_safe */
	RelFileNode rnode;
	ForkNumber	forknum;
	BlockNumber segno;
	atomio_file *file;			/* NULL when !protect */
	int			batch_refs;		/* pending batch entries using file */
	uint64		lru;
} AtomioSeg;

#define MAX_SEGS 64
static AtomioSeg segs[MAX_SEGS];
static uint64 lru_clock = 0;
static bool unsafe_seen = false;

static void
seg_close(AtomioSeg *s)
{
	Assert(s->batch_refs == 0);
	if (s->file != NULL)
	{
		(void) atomio_file_close(s->file);
		ReleaseExternalFD();
	}
	s->file = NULL;
	s->in_use = false;
}

static void
close_all_segs(void)
{
	int			i;

	for (i = 0; i < MAX_SEGS; i++)
		if (segs[i].in_use)
		{
			segs[i].batch_refs = 0;
			seg_close(&segs[i]);
		}
}

static AtomioSeg *
seg_lookup(const RelFileNode *rnode, ForkNumber forknum, BlockNumber segno)
{
	int			i;

	for (i = 0; i < MAX_SEGS; i++)
	{
		AtomioSeg  *s = &segs[i];

		if (s->in_use && s->segno == segno && s->forknum == forknum &&
			RelFileNodeEquals(s->rnode, *rnode))
		{
			s->lru = ++lru_clock;
			return s;
		}
	}
	return NULL;
}

static AtomioSeg *
seg_slot(void)
{
	AtomioSeg  *victim = NULL;
	int			i;

	for (i = 0; i < MAX_SEGS; i++)
	{
		if (!segs[i].in_use)
			return &segs[i];
		if (segs[i].batch_refs == 0 && (victim == NULL || segs[i].lru < victim->lru))
			victim = &segs[i];
	}
	Assert(victim != NULL);
	seg_close(victim);
	return victim;
}

static char *
seg_path(const RelFileNode *rnode, ForkNumber forknum, BlockNumber segno)
{
	char	   *path = relpathperm(*rnode, forknum);

	if (segno > 0)
	{
		char	   *p = psprintf("%s.%u", path, segno);

		pfree(path);
		path = p;
	}
	return path;
}

/*
 * Has this process logged the file (with this safety) before?  A small open
 * addressing set of file ids; when it fills up, logging stops.
 */
#define SEEN_SLOTS 8192
static uint64 seen_ids[SEEN_SLOTS];
static int	seen_n = 0;

static bool
first_sight(uint64 file_id, uint32 safe)
{
	uint64		key = (file_id << 1) | (safe ? 1 : 0);
	uint32		h;

	if (key == 0)
		key = 2;
	h = (uint32) ((key * UINT64CONST(0x9E3779B97F4A7C15)) >> 51);
	for (;;)
	{
		if (seen_ids[h] == key)
			return false;
		if (seen_ids[h] == 0)
			break;
		h = (h + 1) % SEEN_SLOTS;
	}
	if (seen_n >= SEEN_SLOTS / 2)
		return false;
	seen_ids[h] = key;
	seen_n++;
	return true;
}

/* Is this fork of a non-temporary relation written through libatomio? */
static bool
fork_protected(const RelFileNode *rnode, ForkNumber forknum)
{
	struct stat st;
	char	   *init;
	bool		unlogged;

	if (forknum == INIT_FORKNUM)
		return false;
	init = relpathperm(*rnode, INIT_FORKNUM);
	unlogged = (stat(init, &st) == 0);
	pfree(init);
	return !unlogged;
}

/*
 * The segment's id in the store: a 64-bit hash of (tablespace, database,
 * relfilenode, fork, segment), the same in every process and across restarts.
 */
static uint64
seg_file_id(const RelFileNode *rnode, ForkNumber forknum, BlockNumber segno)
{
	uint32		key[5];
	uint64		id;

	key[0] = rnode->spcNode;
	key[1] = rnode->dbNode;
	key[2] = rnode->relNode;
	key[3] = (uint32) forknum;
	key[4] = segno;
	id = hash_bytes_extended((const unsigned char *) key, sizeof(key),
							 UINT64CONST(0x61746f6d696f7067));
	return id != 0 ? id : 1;
}

/*
 * The cache entry of a segment of a non-temporary relation, opening it if
 * needed.  missing_ok: a segment file that does not exist gives NULL instead
 * of an error.  reading: opened by a read (write-behind), which every backend
 * does for every relation it touches: a torn-write-safe file is then logged
 * at DEBUG1 only, and still at LOG when a write opens it.
 */
static AtomioSeg *
seg_get(const RelFileNode *rnode, ForkNumber forknum, BlockNumber segno, bool missing_ok,
		bool reading)
{
	AtomioSeg  *s;
	atomio_file_opts fo;
	atomio_file_info info;
	atomio_ctx *ctx;
	atomio_file *f = NULL;
	char	   *path;
	int			r;

	follow_fsync();
	s = seg_lookup(rnode, forknum, segno);
	if (s != NULL)
		return s;

	if (!fork_protected(rnode, forknum))
	{
		s = seg_slot();
		memset(s, 0, sizeof(*s));
		s->in_use = true;
		s->rnode = *rnode;
		s->forknum = forknum;
		s->segno = segno;
		s->lru = ++lru_clock;
		return s;
	}

	ctx = get_ctx();
	path = seg_path(rnode, forknum, segno);

	atomio_file_opts_init(&fo);
	fo.page_size = BLCKSZ;
	fo.io_style = ATOMIO_IO_BUFFERED;
	fo.file_id = seg_file_id(rnode, forknum, segno);

	s = seg_slot();				/* may close an old entry: frees its fd first */
	ReserveExternalFD();
	r = atomio_file_open(ctx, path, &fo, &f);
	if (r < 0)
	{
		ReleaseExternalFD();
		if (r == -ENOENT && missing_ok)
		{
			pfree(path);
			return NULL;
		}
		errno = errno_for(r);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("atomio: could not open file \"%s\": %s (%s)",
						path, atomio_strerror(r), atomio_err_name(r))));
	}

	info = (atomio_file_info) ATOMIO_FILE_INFO_INIT;
	if (atomio_file_get_info(f, &info) < 0)
		info.torn_write_safe = 0;

	memset(s, 0, sizeof(*s));
	s->in_use = true;
	s->protect = true;
	s->safe = info.torn_write_safe != 0;
	s->rnode = *rnode;
	s->forknum = forknum;
	s->segno = segno;
	s->file = f;
	s->lru = ++lru_clock;
	if (!s->safe)
		unsafe_seen = true;

	if (reading && info.torn_write_safe)
		ereport(DEBUG1,
				(errmsg("atomio: file \"%s\": %s, torn_write_safe=%u (%s)",
						path, atomio_path_name(info.path), info.torn_write_safe, info.reason)));
	else if (first_sight(fo.file_id, info.torn_write_safe))
		ereport(LOG,
				(errmsg("atomio: file \"%s\": %s, torn_write_safe=%u (%s)",
						path, atomio_path_name(info.path), info.torn_write_safe, info.reason)));
	pfree(path);
	return s;
}

/* ---------------------------------------------------------------------------
 * md.c hooks
 */
static void
report_write_error(int r, AtomioSeg *s, BlockNumber blocknum)
{
	char	   *path = seg_path(&s->rnode, s->forknum, s->segno);

	errno = errno_for(r);
	ereport(elevel_for(r),
			(errcode_for_file_access(),
			 errmsg("could not write block %u in file \"%s\" through atomio: %s (%s)",
					blocknum, path, atomio_strerror(r), atomio_err_name(r))));
}

/*
 * A new page of zeros past the end of the file has no old content that could
 * be torn into it, and every store copy of a page beyond the end of file was
 * fenced when the file was truncated (AtomioPgRelease): such an extension
 * stays a plain write, as mdzeroextend does in later releases.  Pages with
 * contents (index builds, copies) go through the library.
 */
static bool
page_is_zero(const char *buffer)
{
	const uint64 *p = (const uint64 *) buffer;
	int			i;

	for (i = 0; i < BLCKSZ / (int) sizeof(uint64); i++)
		if (p[i] != 0)
			return false;
	return true;
}

/*
 * Write-behind: a page written by extension is staged, not written, so the
 * file would not grow, and md takes a relation's size from its files
 * (mdnblocks, and the size of the previous segment when it opens the next):
 * the next extension would reuse the block, and a new segment would be
 * padded over it.  So the block is first extended with zeros in the file, as
 * a new page of zeros is, and the staged page then goes in place over it.
 * No store copy of a block past the end of file can be applied (see
 * page_is_zero) and no staged page of it exists (truncation fences the file,
 * which flushes the staging first), so the plain write replaces nothing;
 * reads of the block see the staged page.  Only extension needs this: every
 * other page PostgreSQL writes lies within its file, because each buffer past
 * the end of file is made by extension first (P_NEW, or smgrextend() of the
 * last block before RBM_ZERO_AND_LOCK reads of the blocks below it).
 */
static void
extend_first(File file, BlockNumber blocknum)
{
	static PGAlignedBlock zero_block;
	off_t		end = (off_t) BLCKSZ * (blocknum % ((BlockNumber) RELSEG_SIZE) + 1);
	off_t		size;
	int			nbytes;

	size = FileSize(file);
	if (size < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not seek to end of file \"%s\": %m", FilePathName(file))));
	if (size >= end)
		return;
	nbytes = FileWrite(file, zero_block.data, BLCKSZ, end - BLCKSZ, WAIT_EVENT_DATA_FILE_EXTEND);
	if (nbytes != BLCKSZ)
	{
		if (nbytes < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not extend file \"%s\": %m", FilePathName(file)),
					 errhint("Check free disk space.")));
		ereport(ERROR,
				(errcode(ERRCODE_DISK_FULL),
				 errmsg("could not extend file \"%s\": wrote only %d of %d bytes at block %u",
						FilePathName(file), nbytes, BLCKSZ, blocknum),
				 errhint("Check free disk space.")));
	}
}

bool
AtomioPgWrite(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
			  const char *buffer, File file, bool extend)
{
	AtomioSeg  *s;
	int			r;

	if (RelFileNodeBackendIsTemp(reln->smgr_rnode))
		return false;
	if (extend && page_is_zero(buffer))
		return false;
	s = seg_get(&reln->smgr_rnode.node, forknum, blocknum / ((BlockNumber) RELSEG_SIZE), false,
				false);
	if (s == NULL || !s->protect)
		return false;
	if (extend && atomio_write_behind)
		extend_first(file, blocknum);

	pgstat_report_wait_start(WAIT_EVENT_DATA_FILE_WRITE);
	r = atomio_write(s->file, blocknum % ((BlockNumber) RELSEG_SIZE), buffer, 0);
	pgstat_report_wait_end();
	if (r < 0)
		report_write_error(r, s, blocknum);
	return true;
}

/*
 * mdread with write-behind: a protected segment is read with atomio_read(),
 * which serves a page still staged (written by any process, not yet in its
 * file) from the staging and reads the file otherwise.  Other segments are
 * read as md reads them.  atomio_read() gives zeros past the end of file
 * where FileRead() gives a short read, which md reports (or zeroes the page
 * in recovery): a page of zeros is checked against the file size, so md
 * sees the same short read.  Staged pages always lie within their file
 * (extend_first).
 */
int
AtomioPgRead(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
			 char *buffer, File file, off_t seekpos, uint32 wait_event_info)
{
	AtomioSeg  *s = NULL;
	off_t		size;
	int			r;

	if (!RelFileNodeBackendIsTemp(reln->smgr_rnode))
		s = seg_get(&reln->smgr_rnode.node, forknum,
					blocknum / ((BlockNumber) RELSEG_SIZE), true, true);
	if (s == NULL || !s->protect)
		return FileRead(file, buffer, BLCKSZ, seekpos, wait_event_info);

	pgstat_report_wait_start(wait_event_info);
	r = atomio_read(s->file, blocknum % ((BlockNumber) RELSEG_SIZE), buffer);
	pgstat_report_wait_end();
	if (r < 0)
	{
		errno = errno_for(r);
		return -1;
	}
	if (!page_is_zero(buffer))
		return BLCKSZ;
	size = FileSize(file);
	if (size < 0)
		return -1;
	if (size >= seekpos + BLCKSZ)
		return BLCKSZ;
	return size > seekpos ? (int) (size - seekpos) : 0;
}

/*
 * Relation files are about to be read without md (copydir): write every
 * staged page of the instance in place first.  A no-op without write-behind.
 */
void
AtomioPgFlush(void)
{
	int			r;

	if (!atomio_write_behind)
		return;
	pgstat_report_wait_start(WAIT_EVENT_DATA_FILE_WRITE);
	r = atomio_ctx_flush(get_ctx());
	pgstat_report_wait_end();
	if (r < 0)
	{
		errno = errno_for(r);
		ereport(elevel_for(r),
				(errcode_for_file_access(),
				 errmsg("atomio: could not write the staged pages in place: %s (%s)",
						atomio_strerror(r), atomio_err_name(r))));
	}
}

int
AtomioPgFileSync(RelFileNodeBackend rnode, ForkNumber forknum, BlockNumber segno,
				 File file, uint32 wait_event_info)
{
	AtomioSeg  *s = NULL;
	int			r;

	if (!RelFileNodeBackendIsTemp(rnode))
		s = seg_get(&rnode.node, forknum, segno, true, false);
	if (s == NULL || !s->protect)
		return FileSync(file, wait_event_info);

	pgstat_report_wait_start(wait_event_info);
	r = atomio_sync(s->file);
	pgstat_report_wait_end();
	if (r < 0)
	{
		errno = errno_for(r);
		return -1;
	}
	return 0;
}

static void
sync_or_die(AtomioSeg *s, int r, const char *what)
{
	char	   *path;

	if (r >= 0)
		return;
	path = seg_path(&s->rnode, s->forknum, s->segno);
	errno = errno_for(r);
	ereport(data_sync_elevel(ERROR),
			(errcode_for_file_access(),
			 errmsg("atomio: could not %s \"%s\": %s (%s)",
					what, path, atomio_strerror(r), atomio_err_name(r))));
}

/*
 * A segment is about to be truncated (mdtruncate, or mdunlinkfork's
 * truncation before unlink): fence it with atomio_file_fence().
 *
 * Syncing releases the file's copies, but recovery still applies released
 * copies until the store's durable tail on disk has passed them, which
 * happens about once per lap of the ring: without the fence a truncated page
 * would come back with its old contents after a crash (rows deleted and
 * vacuumed away would reappear), and copies of an unlinked file would make
 * recovery report it missing.  Copies older than the fence are never applied
 * again.
 *
 * The segment is synced first.  The fence takes away the protection of every
 * in-place write already done, so those writes must be durable before it: a
 * crash may undo the truncation or the unlink (both are only metadata until
 * the next checkpoint syncs them), and redo then reads the file's pages, which
 * must not be torn.  The fence needs no write of the segment in flight, from
 * any process: AtomioPgTruncate() waits for them first (below); an unlinked
 * relation's buffers were dropped before md unlinks it, and dropping a buffer
 * waits for its I/O.
 */
void
AtomioPgRelease(RelFileNodeBackend rnode, ForkNumber forknum, BlockNumber segno)
{
	AtomioSeg  *s;

	if (RelFileNodeBackendIsTemp(rnode))
		return;
	s = seg_get(&rnode.node, forknum, segno, true, false);
	if (s == NULL)
		return;
	if (s->protect)
	{
		Assert(s->batch_refs == 0);
		sync_or_die(s, atomio_sync(s->file), "fsync");
		sync_or_die(s, atomio_file_fence(s->file), "fence");
	}
	seg_close(s);
}

/*
 * mdtruncate: the relation is locked AccessExclusive (or we are replaying
 * WAL), so nobody dirties its pages, but the checkpointer, the bgwriter or a
 * backend may be writing one of its dirty buffers right now.  Flushing the
 * relation's buffers waits for every such write (StartBufferIO waits for an
 * I/O in progress) and leaves none dirty, so no write of the segment is in
 * flight while it is fenced.
 */
void
AtomioPgTruncate(SMgrRelation reln, ForkNumber forknum, BlockNumber segno)
{
	if (RelFileNodeBackendIsTemp(reln->smgr_rnode))
		return;
	if (fork_protected(&reln->smgr_rnode.node, forknum))
		FlushRelationsAllBuffers(&reln, 1);
	AtomioPgRelease(reln->smgr_rnode, forknum, segno);
}

/* md.c unlinks a segment that was truncated (and fenced) earlier */
void
AtomioPgForgetSeg(RelFileNodeBackend rnode, ForkNumber forknum, BlockNumber segno)
{
	AtomioSeg  *s;

	if (RelFileNodeBackendIsTemp(rnode))
		return;
	s = seg_lookup(&rnode.node, forknum, segno);
	if (s != NULL && s->batch_refs == 0)
		seg_close(s);
}

void
AtomioPgForget(RelFileNodeBackend rnode, ForkNumber forknum)
{
	int			i;

	if (RelFileNodeBackendIsTemp(rnode))
		return;
	for (i = 0; i < MAX_SEGS; i++)
		if (segs[i].in_use && segs[i].forknum == forknum &&
			segs[i].batch_refs == 0 && RelFileNodeEquals(segs[i].rnode, rnode.node))
			seg_close(&segs[i]);
}

/*
 * A database directory is about to be removed with rmtree, not md: DROP
 * DATABASE, ALTER DATABASE SET TABLESPACE, a failed CREATE DATABASE, and the
 * redo of CREATE DATABASE (the target first) and DROP DATABASE.  md never
 * sees these files go, so they get their fences here, one manifest append
 * per directory.
 *
 * atomio_ctx_fence_dir() fences every file the store has recorded under the
 * directory, whichever process wrote it.  It first writes the staged pages of
 * every process in place (write-behind): a staged page written by path after
 * its file is gone would fail write-behind for the whole instance, or land in
 * a new file of the same name.  The fenced files' copies that wait for a sync
 * stop waiting, since those files could never be synced again.  Without the
 * fence, a crash before the store's ring has come round would write the old
 * copies into whatever later holds those paths (a database moved away and
 * back, its files rewritten with plain copies in between), or leave recovery
 * waiting for files that are gone.  Nothing needs syncing first: after a
 * crash, redo removes the directory again.
 */
static void
fence_dir(const char *dir)
{
	int			r;

	/* crash.sh's negative control: show what the fence prevents */
	if (getenv("ATOMIO_PG_TEST_SKIP_DIR_FENCE") != NULL)
	{
		ereport(WARNING,
				(errmsg("atomio: \"%s\" is removed without a fence (ATOMIO_PG_TEST_SKIP_DIR_FENCE is set: a negative control, never for real use)",
						dir)));
		AtomioPgFlush();		/* what the fence does first */
		return;
	}
	r = atomio_ctx_fence_dir(get_ctx(), dir);
	if (r == -ENOENT)
		return;					/* not there: nothing of it to fence */
	if (r < 0)
	{
		errno = errno_for(r);
		ereport(data_sync_elevel(ERROR),
				(errcode_for_file_access(),
				 errmsg("atomio: could not fence the files under \"%s\" in the doublewrite store: %s (%s)",
						dir, atomio_strerror(r), atomio_err_name(r))));
	}
	else
		elog(DEBUG1, "atomio: fenced %d files under \"%s\"", r, dir);
}

/* The directory dir (movedb's source, the target of a CREATE DATABASE redo). */
void
AtomioPgRemoveDir(const char *dir)
{
	close_all_segs();
	fence_dir(dir);
}

/* Every tablespace's directory of database db_id. */
void
AtomioPgDropDatabase(Oid db_id)
{
	DIR		   *dirdesc;
	struct dirent *de;
	char	   *path;

	close_all_segs();
	path = GetDatabasePath(db_id, DEFAULTTABLESPACE_OID);
	fence_dir(path);
	pfree(path);
	dirdesc = AllocateDir("pg_tblspc");
	while ((de = ReadDir(dirdesc, "pg_tblspc")) != NULL)
	{
		Oid			spc = atooid(de->d_name);

		if (strspn(de->d_name, "0123456789") != strlen(de->d_name) || spc == InvalidOid)
			continue;
		path = GetDatabasePath(db_id, spc);
		fence_dir(path);
		pfree(path);
	}
	FreeDir(dirdesc);
}

/* ---------------------------------------------------------------------------
 * xloginsert.c: full-page images with full_page_writes = off
 */
bool
AtomioPgNeedsFPI(const RelFileNode *rnode, ForkNumber forknum, BlockNumber blkno)
{
	int			i;
	BlockNumber segno = blkno / ((BlockNumber) RELSEG_SIZE);

	/* no I/O and no allocation here: we may be in a critical section */
	for (i = 0; i < MAX_SEGS; i++)
	{
		AtomioSeg  *s = &segs[i];

		if (s->in_use && s->segno == segno && s->forknum == forknum &&
			RelFileNodeEquals(s->rnode, *rnode))
			return s->protect && !s->safe;
	}

	/*
	 * Not opened by this process: every process opens files with the same
	 * options, so the answer is the one our own files got.  Without
	 * durability (fsync = off) no file is torn-write safe.
	 */
	if (!enableFsync || unsafe_seen)
		return true;
	return false;
}

/* ---------------------------------------------------------------------------
 * Checkpointer
 */
void
AtomioPgLogStats(void)
{
	atomio_stats st = ATOMIO_STATS_INIT;

	if (atomio_ctx_get_stats(get_ctx(), &st) < 0)
		return;
	ereport(LOG,
			(errmsg("atomio: checkpointer counters: pages direct_atomic=%llu buffered_atomic=%llu "
					"doublewrite=%llu unsafe=%llu, batches=%llu, group_commits=%llu (records %llu), "
					"syncs=%llu, forced_syncs=%llu, downgrades=%llu, bytes data=%llu doublewrite=%llu; "
					"store used %llu of %llu bytes, %llu processes attached; "
					"write-behind pages_staged=%llu staged_reads=%llu staged_now=%llu",
					(unsigned long long) st.pages[ATOMIO_PATH_DIRECT_ATOMIC],
					(unsigned long long) st.pages[ATOMIO_PATH_BUFFERED_ATOMIC],
					(unsigned long long) st.pages[ATOMIO_PATH_DOUBLEWRITE],
					(unsigned long long) st.pages[ATOMIO_PATH_UNSAFE],
					(unsigned long long) st.batches,
					(unsigned long long) st.group_commits,
					(unsigned long long) st.group_records,
					(unsigned long long) st.syncs,
					(unsigned long long) st.forced_syncs,
					(unsigned long long) st.downgrades,
					(unsigned long long) st.bytes_data,
					(unsigned long long) st.bytes_doublewrite,
					(unsigned long long) st.store_bytes_used,
					(unsigned long long) st.store_bytes,
					(unsigned long long) st.attached,
					(unsigned long long) st.pages_staged,
					(unsigned long long) st.staged_reads,
					(unsigned long long) st.staged_now)));
}

/* ---------------------------------------------------------------------------
 * Checkpointer and background writer batches
 *
 * SyncOneBuffer() hands us a buffer it has pinned and share-locked.  We start
 * its I/O ourselves (BM_IO_IN_PROGRESS, without the single InProgressBuf that
 * FlushBuffer uses) and keep pin, content lock and I/O until the batch is
 * written; then each buffer is marked clean only if its own write succeeded.
 * Other processes that want the buffer wait for its I/O as for any write.  We
 * never wait for another process's I/O while we hold a batch: a buffer whose
 * I/O is in progress makes us write the batch first and leave that buffer to
 * FlushBuffer.  On any error every buffer of the batch gets BM_IO_ERROR and
 * stays dirty, exactly as AbortBufferIO() does for one.
 */
#define BATCH_MAX 32

typedef struct BatchEnt
{
	BufferDesc *buf;
	AtomioSeg  *seg;
	XLogRecPtr	lsn;
} BatchEnt;

static BatchEnt batch[BATCH_MAX];
static atomio_page_write batch_w[BATCH_MAX];
static int	batch_n = 0;
static char *batch_pages = NULL;
static WritebackContext *batch_wb = NULL;

#define ATOMIO_BUF_BLOCK(b) ((Block) (BufferBlocks + ((Size) (b)->buf_id) * BLCKSZ))

int
AtomioPgBatchPending(void)
{
	return batch_n;
}

static int
batch_pending_count(void)
{
	return batch_n;
}

static void
end_io(BufferDesc *buf, bool clear_dirty, uint32 set_flag_bits)
{
	uint32		state = LockBufHdr(buf);

	Assert(state & BM_IO_IN_PROGRESS);
	state &= ~(BM_IO_IN_PROGRESS | BM_IO_ERROR);
	if (clear_dirty && !(state & BM_JUST_DIRTIED))
		state &= ~(BM_DIRTY | BM_CHECKPOINT_NEEDED);
	state |= set_flag_bits;
	UnlockBufHdr(buf, state);
	ConditionVariableBroadcast(BufferDescriptorGetIOCV(buf));
}

static void
release_ent(BatchEnt *e)
{
	LWLock	   *lock = BufferDescriptorGetContentLock(e->buf);

	if (LWLockHeldByMe(lock))
		LWLockRelease(lock);
	ReleaseBuffer(BufferDescriptorGetBuffer(e->buf));
	if (e->seg->batch_refs > 0)
		e->seg->batch_refs--;
}

/* error path: every pending buffer stays dirty, with BM_IO_ERROR */
static void
batch_abort(void)
{
	int			n = batch_n;
	int			i;

	batch_n = 0;
	for (i = 0; i < n; i++)
		end_io(batch[i].buf, false, BM_IO_ERROR);
	for (i = 0; i < n; i++)
		release_ent(&batch[i]);
}

static void
register_sync(BatchEnt *e)
{
	FileTag		tag;

	memset(&tag, 0, sizeof(tag));
	tag.handler = SYNC_HANDLER_MD;
	tag.forknum = e->seg->forknum;
	tag.rnode = e->seg->rnode;
	tag.segno = e->seg->segno;
	if (RegisterSyncRequest(&tag, SYNC_REQUEST, false))
		return;
	/* the request queue is full: sync it ourselves, as md.c does */
	sync_or_die(e->seg, atomio_sync(e->seg->file), "fsync");
}

void
AtomioPgBatchFlush(void)
{
	int			n = batch_n;
	int			first_err = 0;
	int			first_err_i = -1;
	int			i;
	volatile int done;

	if (n == 0)
		return;

	PG_TRY();
	{
		XLogRecPtr	maxlsn = InvalidXLogRecPtr;
		bool		checksums = DataChecksumsEnabled();
		atomio_ctx *ctx = get_ctx();
		int			written;

		for (i = 0; i < n; i++)
			if (batch[i].lsn > maxlsn)
				maxlsn = batch[i].lsn;
		/* the WAL rule, once for the whole batch: every buffer is permanent */
		XLogFlush(maxlsn);

		if (checksums && batch_pages == NULL)
		{
			batch_pages = atomio_page_alloc(ctx, BLCKSZ, BATCH_MAX);
			if (batch_pages == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("atomio: out of memory for the batch pages")));
		}

		for (i = 0; i < n; i++)
		{
			BufferDesc *buf = batch[i].buf;
			char	   *page = (char *) ATOMIO_BUF_BLOCK(buf);

			if (checksums)
			{
				/* a private copy: others may set hint bits under our share lock */
				char	   *copy = batch_pages + (Size) i * BLCKSZ;

				memcpy(copy, page, BLCKSZ);
				PageSetChecksumInplace((Page) copy, buf->tag.blockNum);
				page = copy;
			}
			batch_w[i].file = batch[i].seg->file;
			batch_w[i].page_no = buf->tag.blockNum % ((BlockNumber) RELSEG_SIZE);
			batch_w[i].page = page;
			batch_w[i].result = 0;
			batch_w[i].reserved0 = 0;
		}

		pgstat_report_wait_start(WAIT_EVENT_DATA_FILE_WRITE);
		written = atomio_write_batch(ctx, batch_w, n,
									 checksums ? ATOMIO_WRITE_STABLE_PAGES : 0);
		pgstat_report_wait_end();
		/* each entry carries its own result; a call-level error fails all */
		if (written < 0)
			for (i = 0; i < n; i++)
				if (batch_w[i].result == 0)
					batch_w[i].result = written;

		/*
		 * Each written segment's sync request goes out before its buffer is
		 * marked clean, as md's own write registers it before the buffer's
		 * I/O ends: a checkpoint that finds the buffer clean must find the
		 * request too.  Otherwise its sync phase may miss the segment, and
		 * with write-behind the page may still be staged when the checkpoint
		 * completes, then lost in a crash while redo starts past its change.
		 */
		for (i = 0; i < n; i++)
			if (batch_w[i].result == 0)
				register_sync(&batch[i]);
	}
	PG_CATCH();
	{
		batch_abort();
		PG_RE_THROW();
	}
	PG_END_TRY();

	for (i = 0; i < n; i++)
	{
		int			r = batch_w[i].result;

		if (r == 0)
		{
			end_io(batch[i].buf, true, 0);
			pgBufferUsage.shared_blks_written++;
		}
		else
		{
			end_io(batch[i].buf, false, BM_IO_ERROR);
			if (first_err_i < 0 || elevel_for(r) > elevel_for(first_err))
			{
				first_err = r;
				first_err_i = i;
			}
		}
	}

	batch_n = 0;
	done = 0;
	PG_TRY();
	{
		for (; done < n; done++)
		{
			BatchEnt   *e = &batch[done];
			BufferTag	tag = e->buf->tag;

			release_ent(e);
			if (batch_wb != NULL)
				ScheduleBufferTagForWriteback(batch_wb, &tag);
		}
	}
	PG_CATCH();
	{
		/* I/O is already ended for all; give back what is still held */
		for (done++; done < n; done++)
			release_ent(&batch[done]);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (first_err_i >= 0)
	{
		/* the segment entry is still cached: nothing closes it in between */
		BatchEnt   *e = &batch[first_err_i];

		report_write_error(first_err, e->seg, e->buf->tag.blockNum);
	}
}

/*
 * SyncOneBuffer's share lock on the next buffer.  A backend may hold that
 * buffer exclusively while it waits for one of ours (a btree split locks
 * neighbours), so never block on it while we hold a batch.
 */
void
AtomioPgLockContent(BufferDesc *buf)
{
	LWLock	   *lock = BufferDescriptorGetContentLock(buf);

	if (batch_n > 0 && LWLockConditionalAcquire(lock, LW_SHARED))
		return;
	AtomioPgBatchFlush();
	LWLockAcquire(lock, LW_SHARED);
}

bool
AtomioPgBatchAdd(BufferDesc *buf, WritebackContext *wb_context)
{
	AtomioSeg  *s = NULL;
	uint32		state;

	if (!(pg_atomic_read_u32(&buf->state) & BM_PERMANENT))
	{
		AtomioPgBatchFlush();
		return false;
	}

	PG_TRY();
	{
		s = seg_get(&buf->tag.rnode, buf->tag.forkNum,
					buf->tag.blockNum / ((BlockNumber) RELSEG_SIZE), true, false);
		/* room to remember the pin of the next buffer SyncOneBuffer takes */
		ResourceOwnerEnlargeBuffers(CurrentResourceOwner);
	}
	PG_CATCH();
	{
		batch_abort();
		PG_RE_THROW();
	}
	PG_END_TRY();

	/*
	 * Unlogged, or a segment that redo has yet to create: FlushBuffer's way.
	 * It may wait for another process's I/O, so write our batch first.
	 */
	if (s == NULL || !s->protect)
	{
		AtomioPgBatchFlush();
		return false;
	}

	if (batch_n > 0 && batch_wb != wb_context)
		AtomioPgBatchFlush();
	batch_wb = wb_context;

	state = LockBufHdr(buf);
	if (state & BM_IO_IN_PROGRESS)
	{
		/* never wait for another process while we hold I/O on a batch */
		UnlockBufHdr(buf, state);
		AtomioPgBatchFlush();
		return false;
	}
	if (!(state & BM_VALID) || !(state & BM_DIRTY))
	{
		/* FlushBuffer will find nothing to do, unless someone is writing it */
		UnlockBufHdr(buf, state);
		AtomioPgBatchFlush();
		return false;
	}
	batch[batch_n].lsn = PageGetLSN((Page) ATOMIO_BUF_BLOCK(buf));
	state |= BM_IO_IN_PROGRESS;
	state &= ~BM_JUST_DIRTIED;
	UnlockBufHdr(buf, state);

	batch[batch_n].buf = buf;
	batch[batch_n].seg = s;
	s->batch_refs++;
	batch_n++;

	if (batch_n >= BATCH_MAX)
		AtomioPgBatchFlush();
	return true;
}
