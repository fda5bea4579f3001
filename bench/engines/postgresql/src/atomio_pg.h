/*-------------------------------------------------------------------------
 *
 * atomio_pg.h
 *	  Untorn relation page writes through libatomio.
 *
 * Every hook the patch adds to md.c, bufmgr.c, the postmaster, the
 * checkpointer and xloginsert.c is a call into atomio_pg.c, guarded by the
 * atomio GUC: with atomio = off no libatomio function is ever called and the
 * server behaves exactly as the stock one.
 *
 * src/include/storage/atomio_pg.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ATOMIO_PG_H
#define ATOMIO_PG_H

#include "storage/buf_internals.h"
#include "storage/fd.h"
#include "storage/relfilenode.h"
#include "storage/smgr.h"

/* GUCs (guc.c) */
extern PGDLLIMPORT bool atomio_enabled;
extern PGDLLIMPORT int atomio_store_size_mb;
extern PGDLLIMPORT bool atomio_write_behind;
extern PGDLLIMPORT int atomio_write_behind_size_mb;

/* postmaster: open the first context (or recover it again after a crash) */
extern void AtomioPgPostmasterStartup(void);

/*
 * md.c: true when the block went through libatomio, false for md's plain
 * path.  file: md's descriptor of the segment.  extend: mdextend() (a new
 * page of zeros stays plain).
 */
extern bool AtomioPgWrite(SMgrRelation reln, ForkNumber forknum,
						  BlockNumber blocknum, const char *buffer, File file,
						  bool extend);
/*
 * md.c, write-behind only: read a block as FileRead() does (bytes read, or -1
 * with errno), through atomio_read() for protected segments, which sees pages
 * staged but not yet written to their file.
 */
extern int	AtomioPgRead(SMgrRelation reln, ForkNumber forknum,
						 BlockNumber blocknum, char *buffer, File file,
						 off_t seekpos, uint32 wait_event_info);
/* copydir.c: relation files are about to be read without md: write staged pages */
extern void AtomioPgFlush(void);
/* md.c: FileSync() of a segment, through atomio_sync() for protected files */
extern int	AtomioPgFileSync(RelFileNodeBackend rnode, ForkNumber forknum,
							 BlockNumber segno, File file, uint32 wait_event_info);
/* md.c: a segment is about to be truncated or unlinked */
extern void AtomioPgRelease(RelFileNodeBackend rnode, ForkNumber forknum,
							BlockNumber segno);
/* md.c: mdtruncate is about to shorten a segment */
extern void AtomioPgTruncate(SMgrRelation reln, ForkNumber forknum,
							 BlockNumber segno);
/* md.c: a truncated segment is unlinked */
extern void AtomioPgForgetSeg(RelFileNodeBackend rnode, ForkNumber forknum,
							  BlockNumber segno);
/* md.c: md closes a fork */
extern void AtomioPgForget(RelFileNodeBackend rnode, ForkNumber forknum);

/* bufmgr.c: checkpointer / bgwriter batches */
extern void AtomioPgLockContent(BufferDesc *buf);
extern bool AtomioPgBatchAdd(BufferDesc *buf, WritebackContext *wb_context);
extern void AtomioPgBatchFlush(void);
extern int	AtomioPgBatchPending(void);

/* xloginsert.c: does this block need a full-page image although fpw is off? */
extern bool AtomioPgNeedsFPI(const RelFileNode *rnode, ForkNumber forknum,
							 BlockNumber blkno);

/* checkpointer: log the library's counters */
extern void AtomioPgLogStats(void);

/* dbcommands.c: database directories are about to be removed (also in redo):
 * every tablespace's directory of a database, or one directory */
extern void AtomioPgDropDatabase(Oid db_id);
extern void AtomioPgRemoveDir(const char *dir);

#define ATOMIO_FILEWRITE(reln, forknum, blocknum, buffer, file, pos, ev, extend) \
	((atomio_enabled && AtomioPgWrite(reln, forknum, blocknum, buffer, file, extend)) ? \
	 BLCKSZ : FileWrite(file, buffer, BLCKSZ, pos, ev))

#define ATOMIO_FILEREAD(reln, forknum, blocknum, buffer, file, pos, ev) \
	((atomio_enabled && atomio_write_behind) ? \
	 AtomioPgRead(reln, forknum, blocknum, buffer, file, pos, ev) : \
	 FileRead(file, buffer, BLCKSZ, pos, ev))

#define ATOMIO_FILESYNC(rnode, forknum, segno, file, ev) \
	(atomio_enabled ? AtomioPgFileSync(rnode, forknum, segno, file, ev) : \
	 FileSync(file, ev))

#define ATOMIO_RELEASE(rnode, forknum, segno) \
	do { if (atomio_enabled) AtomioPgRelease(rnode, forknum, segno); } while (0)

#define ATOMIO_TRUNCATE(reln, forknum, segno) \
	do { if (atomio_enabled) AtomioPgTruncate(reln, forknum, segno); } while (0)

#define ATOMIO_FORGET_SEG(rnode, forknum, segno) \
	do { if (atomio_enabled) AtomioPgForgetSeg(rnode, forknum, segno); } while (0)

#endif							/* ATOMIO_PG_H */
