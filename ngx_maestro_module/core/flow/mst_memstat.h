/*
 * Copyright (C) Maestro authors
 */

/*
 * DESIGN
 *
 * The "memory_bytes" metric of a step: the peak, while the plugin's run()
 * executes, of the bytes allocated minus the bytes freed through jansson
 * on the step's thread. The host and the plugins share one libjansson in
 * the process, so this counts the plugin's JSON values, the texts it
 * dumps, and what host functions allocate for it as JSON (llm_chat's
 * request and response, parsed event data); not plain malloc() calls,
 * and not threads the plugin makes.
 *
 * How: mst_memstat_init() installs malloc/free wrappers with
 * json_set_alloc_funcs(). Pointers stay plain malloc() pointers (sizes
 * come from malloc_usable_size(), there is no header), so memory jansson
 * hands out may still be released with free(), as every caller here and
 * every plugin does, and the wrappers may be installed after jansson was
 * first used. Counting is thread-local and on only between begin and end,
 * so other threads and the event loop pay a thread-local test per call.
 * A value allocated before begin and freed inside the window lowers the
 * count; the peak is never below 0.
 */

#ifndef _MST_MEMSTAT_H_INCLUDED_
#define _MST_MEMSTAT_H_INCLUDED_

#include <stddef.h>


/*
 * Install the counting allocator; once per process, while it has one
 * thread (configuration time). Later calls do nothing.
 */
void mst_memstat_init(void);

/* start counting on this thread, from 0 */
void mst_memstat_begin(void);

/* stop counting on this thread; the peak since begin, in bytes */
size_t mst_memstat_end(void);

/* stop counting for a while (host work that is not the step's); returns
   what to give mst_memstat_resume() */
int mst_memstat_pause(void);
void mst_memstat_resume(int paused);

#endif /* _MST_MEMSTAT_H_INCLUDED_ */
