#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Groups a perf profile of vfio-uring-bench by side process and cost bucket.

usage: perf record -e cpu-clock [-g] -o perf.data -- vfio-uring-bench ...
       perf script -i perf.data -F comm,pid,tid,ip,sym | tools/bench/perf-buckets.py [HZ]
Side processes are named vub-src-<engine> / vub-dst-<engine> (threads and io_uring workers
included); the warm-up run is left out. HZ is the sampling rate (perf default 4000).
The grouping is by function name and approximate (e.g. filemap lookups count as device I/O).
With call chains (-g) a sample is grouped by what it is inside of (a page fault, an
allocator system call, a socket send, ...), which also places the samples this VM reports
at the point where interrupts are enabled again (pvm_irq_enable: mostly the host's share of
page faults) instead of leaving them in "other".
"""
import collections
import sys

def bucket(side, kind, s):
    if s.startswith('copy_folio_from_iter') or s.startswith('shmem_write') or s in ('generic_perform_write','shmem_get_folio_gfp','folio_mark_accessed'):
        return 'device write (copy into memfd)'
    if s in ('shmem_file_read_iter','filemap_get_entry','xas_load','folio_unlock','copy_page_to_iter'):
        return 'device read (memfd)'
    if s == '_copy_to_iter':
        return 'device read (memfd)' if side == 'src' else 'socket recv copy'
    if s == '_copy_from_iter':
        return 'socket send copy'
    if s.startswith('__memmove') or s.startswith('__memcpy'):
        return 'user memcpy (extra copy)'
    if s in ('clear_page_erms','exc_page_fault','do_anonymous_page','__handle_mm_fault','handle_mm_fault','lock_vma_under_rcu','get_page_from_freelist','__alloc_frozen_pages_noprof','alloc_pages_mpol','free_unref_folios','unmap_page_range','__free_frozen_pages','folio_add_new_anon_rmap','vma_alloc_folio_noprof','__mem_cgroup_charge','uncharge_folio','__mem_cgroup_uncharge_folios','memcg1_commit_charge','charge_memcg','mod_memcg_lruvec_state','__lruvec_stat_mod_folio','free_frozen_page_commit','___pte_offset_map','zap_present_ptes','release_pages','__folio_put','folios_put_refs','vm_normal_page','folio_remove_rmap_ptes','count_memcg_events','sync_regs','__pte_offset_map_lock','pte_offset_map_rw_nolock','mas_walk'):
        return 'page faults / page alloc+free / zeroing'
    if s.startswith('tcp_') or s.startswith('skb') or s.startswith('__skb') or s in ('handle_softirqs','_raw_spin_unlock_irqrestore','__alloc_skb','kfree','kmem_cache_free','__check_object_size','__virt_addr_valid','process_backlog','ip_finish_output2','__dev_queue_xmit','sock_def_readable','__tcp_transmit_skb','raw_local_deliver','__list_del_entry_valid_or_report','skb_release_data','__kmalloc_node_track_caller_noprof','kmalloc_reserve','sk_page_frag_refill','__sys_sendmsg','unix_stream_read_generic','unix_stream_sendmsg'):
        return 'socket stack (TCP, skb, softirq)'
    if s in ('finish_task_switch.isra.0','__schedule','schedule','_raw_spin_unlock_irq','try_to_wake_up','futex_wake','__futex_abstimed_wait_common','read_tsc','_raw_spin_lock','__raw_callee_save___pv_queued_spin_unlock','_raw_spin_unlock','native_queued_spin_lock_slowpath'):
        return 'scheduling, wakeups, locks'
    if kind == 'iou-wrk' or s.startswith('io_') or s.startswith('__io_') or s.startswith('vu_') or s.startswith('vfio_uring'):
        return 'io_uring + engine bookkeeping'
    return 'other'
SEND = ('tcp_sendmsg', 'tcp_sendmsg_locked', 'unix_stream_sendmsg', '__sys_sendmsg', '__sys_sendto')
RECV = ('tcp_recvmsg', 'tcp_recvmsg_locked', 'unix_stream_read_generic', '__sys_recvfrom', '__sys_recvmsg')
ALLOC_SYSCALLS = ('__x64_sys_madvise', '__x64_sys_munmap', '__x64_sys_mprotect', '__x64_sys_mmap', '__x64_sys_brk')
SCHED = ('__x64_sys_futex', '__schedule', 'schedule', 'try_to_wake_up')

def bucket_chain(side, kind, chain):
    """chain: leaf first. What the sample is inside of decides, then the leaf."""
    inside = set(chain)
    leaf = chain[0]
    if 'exc_page_fault' in inside or 'asm_exc_page_fault' in inside:
        return 'page faults / page alloc+free / zeroing'
    if inside.intersection(ALLOC_SYSCALLS):
        return 'madvise/munmap/mprotect (allocator)'
    if 'net_rx_action' in inside or 'process_backlog' in inside:
        return 'socket stack (TCP, skb, softirq)'
    if inside.intersection(SEND):
        return 'socket send copy' if leaf == '_copy_from_iter' else 'socket stack (TCP, skb, softirq)'
    if inside.intersection(RECV):
        return 'socket recv copy' if leaf == '_copy_to_iter' else 'socket stack (TCP, skb, softirq)'
    if 'shmem_file_read_iter' in inside or 'filemap_read' in inside:
        return 'device read (memfd)'
    if 'shmem_file_write_iter' in inside or 'generic_perform_write' in inside:
        return 'device write (copy into memfd)'
    if inside.intersection(SCHED):
        return 'scheduling, wakeups, locks'
    return bucket(side, kind, leaf)

cnt = collections.defaultdict(collections.Counter); name = {}; rows = []
cur = None
for line in sys.stdin:
    if line.startswith('\t'):          # a call chain frame: "\taddr sym"
        p = line.split()
        if cur is not None and len(p) > 1: cur[2].append(p[1])
        continue
    p = line.split()
    if len(p) < 2 or '/' not in p[1]: continue
    comm = p[0]; pid, tid = p[1].split('/')
    if comm.startswith('vub-'): name[pid] = comm
    kind = 'main' if pid == tid else ('iou-wrk' if comm.startswith('iou-wrk') else 'thread')
    cur = (pid, kind, [p[3]] if len(p) > 3 else [])
    rows.append(cur)
agg = collections.defaultdict(collections.Counter)
for pid, kind, chain in rows:
    n = name.get(pid)
    if not n or 'warmup' in n: continue
    side = n.split('-')[1]
    if len(chain) > 1:
        agg[n][bucket_chain(side, kind, chain)] += 1
    else:
        agg[n][bucket(side, kind, chain[0] if chain else '?')] += 1
HZ = float(sys.argv[1]) if len(sys.argv) > 1 else 4000.0
order = ['uring','threads','legacy','raw']
for e in order:
    for side in ('src','dst'):
        n = 'vub-%s-%s' % (side, e)
        if n not in agg: continue
        tot = sum(agg[n].values())
        print('%s %s: %.2f CPU s' % (e, side, tot / HZ))
        for b, v in agg[n].most_common():
            print('    %5.1f%%  %-42s %.2f s' % (100 * v / tot, b, v / HZ))
