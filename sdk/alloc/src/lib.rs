//! The memory allocator of Portrait's browser wasm modules (the SDK and its interest module):
//! free lists of power-of-two blocks carved from pages that `memory.grow` adds.
//!
//! Rust's default allocator for `wasm32-unknown-unknown`, dlmalloc, is ~6 KB of wasm
//! (2.25 KB brotli) that every visitor downloads before the SDK is ready. The SDK's heap is
//! small (a queue of encoded events, a page's context, a few hundred short strings), so a
//! simpler trade serves it: every block is rounded up to a power of two, and a freed block
//! only ever serves its own size again. The code is a few hundred bytes.
//!
//! ```ignore
//! #[cfg(target_arch = "wasm32")]
//! #[global_allocator]
//! static ALLOCATOR: portrait_sdk_alloc::Pow2<portrait_sdk_alloc::WasmMemory> = portrait_sdk_alloc::Pow2::new();
//! ```
//!
//! Invariants:
//! - A block of size class `c` is `2^c` bytes (at least 16) and aligned to `2^c`, or to the
//!   64 KiB page for larger ones: any layout whose alignment is at most its rounded size and
//!   at most a page is served. Larger alignments get a null pointer (Rust then aborts); no
//!   code in these modules asks for one.
//! - Memory is never given back (wasm memory cannot shrink): a freed block waits on its
//!   class's free list. Each block is at most twice the bytes asked for; the gap an aligned
//!   block leaves before it is cut into smaller aligned blocks for the free lists, so no
//!   memory is left unused, but a class's free blocks serve only that class.
//! - Single-threaded: the browser modules are built without atomics, so the `Sync` impl
//!   below holds only there.

#![no_std]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

/// The wasm page, the unit of `memory.grow`.
pub const PAGE: usize = 64 * 1024;
/// Blocks are at least 2^4 = 16 bytes: room for the free list's link, and 16-aligned.
const MIN_CLASS: u32 = 4;
/// Blocks are at most 2^30 bytes (1 GiB); larger requests get a null pointer, far beyond
/// anything the SDK's modules hold.
const MAX_CLASS: u32 = 30;

/// Where new pages come from: `memory.grow` in the browser, a fixed buffer in tests.
pub trait Pages {
    /// Adds `pages` pages of [`PAGE`] bytes; answers the address of the first, or `None` when
    /// the memory cannot grow.
    fn grow(&self, pages: usize) -> Option<usize>;
}

/// The module's own linear memory.
#[cfg(target_arch = "wasm32")]
pub struct WasmMemory;

#[cfg(target_arch = "wasm32")]
impl Pages for WasmMemory {
    fn grow(&self, pages: usize) -> Option<usize> {
        match core::arch::wasm32::memory_grow(0, pages) {
            usize::MAX => None,
            // 4 GiB of memory ends past the 32-bit address space: no address to answer.
            previous => previous.checked_mul(PAGE),
        }
    }
}

/// The allocator: see the module's documentation. `M` is [`WasmMemory`] but in tests.
pub struct Pow2<M> {
    heap: UnsafeCell<Heap>,
    memory: M,
}

struct Heap {
    /// Each class's free blocks, linked through their first word.
    free: [*mut u8; MAX_CLASS as usize + 1],
    /// The unused part of the pages grown last: `next..end`.
    next: usize,
    end: usize,
}

// Single-threaded target: see the module's invariants.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for Pow2<WasmMemory> {}

#[cfg(target_arch = "wasm32")]
impl Pow2<WasmMemory> {
    pub const fn new() -> Pow2<WasmMemory> {
        Pow2::with_pages(WasmMemory)
    }
}

#[cfg(target_arch = "wasm32")]
impl Default for Pow2<WasmMemory> {
    fn default() -> Self {
        Pow2::new()
    }
}

impl<M: Pages> Pow2<M> {
    pub const fn with_pages(memory: M) -> Pow2<M> {
        let heap = Heap { free: [ptr::null_mut(); MAX_CLASS as usize + 1], next: 0, end: 0 };
        Pow2 { heap: UnsafeCell::new(heap), memory }
    }

    /// A block of class `class`: the last one freed, else a new one.
    ///
    /// # Safety
    /// Not re-entered (single-threaded, and nothing here allocates).
    unsafe fn take(&self, class: u32) -> *mut u8 {
        let heap = unsafe { &mut *self.heap.get() };
        let head = heap.free[class as usize];
        if !head.is_null() {
            heap.free[class as usize] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        match unsafe { self.carve(heap, 1 << class) } {
            Some(block) => block as *mut u8,
            None => ptr::null_mut(),
        }
    }

    /// A new block of `size` bytes (a power of two) from the unused memory, grown as needed;
    /// `None` when the memory cannot grow (or would reach the end of the address space).
    unsafe fn carve(&self, heap: &mut Heap, size: usize) -> Option<usize> {
        if heap.end == 0 {
            // The first block: the heap begins where the memory ends now.
            let at = self.memory.grow(0)?;
            (heap.next, heap.end) = (at, at);
        }
        // `end` is a page boundary and the alignment divides a page: `start` never passes `end`.
        let mut start = heap.next.next_multiple_of(size.min(PAGE));
        if heap.end - start < size {
            // Only this allocator grows the memory, so new pages follow the last ones and
            // the block may begin in their unused tail.
            let mut pages = (size - (heap.end - start)).div_ceil(PAGE);
            let at = self.memory.grow(pages)?;
            if at != heap.end {
                // Something else grew the memory after all: the old tail goes to the free
                // lists, and the block starts on the new pages, with more after them if needed.
                unsafe { heap.recycle(heap.next, heap.end) };
                let more = size.div_ceil(PAGE).saturating_sub(pages);
                if more > 0 && self.memory.grow(more)? != at.checked_add(pages * PAGE)? {
                    return None;
                }
                (heap.next, heap.end, start) = (at, at, at);
                pages += more;
            }
            heap.end = heap.end.checked_add(pages * PAGE)?;
        }
        // The gap an aligned block leaves before it serves smaller blocks.
        unsafe { heap.recycle(heap.next, start) };
        heap.next = start + size;
        Some(start)
    }
}

impl Heap {
    /// Puts the unused memory `from..to` (both multiples of 16) on the free lists, as the
    /// largest blocks that fit and are aligned where they start.
    ///
    /// # Safety
    /// `from..to` is memory of this heap that no block uses.
    unsafe fn recycle(&mut self, mut from: usize, to: usize) {
        while from < to {
            let class = from.trailing_zeros().min((to - from).ilog2());
            let block = from as *mut u8;
            unsafe { block.cast::<*mut u8>().write(self.free[class as usize]) };
            self.free[class as usize] = block;
            from += 1 << class;
        }
    }
}

/// The size class serving `layout`, or `None` past [`MAX_CLASS`] or a page's alignment.
fn class_of(size: usize, align: usize) -> Option<u32> {
    let class = size.max(align).max(1 << MIN_CLASS).checked_next_power_of_two()?.trailing_zeros();
    (class <= MAX_CLASS && align <= PAGE).then_some(class)
}

unsafe impl<M: Pages> GlobalAlloc for Pow2<M> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout.size(), layout.align()) {
            Some(class) => unsafe { self.take(class) },
            None => ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout.size(), layout.align()) else { return };
        let heap = unsafe { &mut *self.heap.get() };
        unsafe { block.cast::<*mut u8>().write(heap.free[class as usize]) };
        heap.free[class as usize] = block;
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if class_of(layout.size(), layout.align()) == class_of(new_size, layout.align()) {
            return block;
        }
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            unsafe {
                ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use core::cell::Cell;
    use std::vec::Vec;

    use super::*;

    /// A memory of at most `limit` pages in one page-aligned buffer, which a test can also
    /// grow behind the allocator's back.
    struct TestMemory {
        base: usize,
        used: Cell<usize>,
        limit: usize,
    }

    impl TestMemory {
        fn new(limit: usize) -> TestMemory {
            let layout = Layout::from_size_align(limit * PAGE, PAGE).unwrap();
            let base = unsafe { std::alloc::alloc_zeroed(layout) } as usize;
            assert_ne!(base, 0);
            // The module's data and stack: the heap starts after them.
            TestMemory { base, used: Cell::new(1), limit }
        }

        fn grow(&self, pages: usize) -> Option<usize> {
            let previous = self.used.get();
            (previous + pages <= self.limit).then(|| {
                self.used.set(previous + pages);
                self.base + previous * PAGE
            })
        }

        fn contains(&self, block: *mut u8, size: usize) -> bool {
            let at = block as usize;
            at >= self.base + PAGE && at + size <= self.base + self.used.get() * PAGE
        }
    }

    impl Pages for &TestMemory {
        fn grow(&self, pages: usize) -> Option<usize> {
            (**self).grow(pages)
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn sizes_round_up_to_powers_of_two_of_at_least_16_bytes() {
        let cases: &[((usize, usize), Option<u32>)] = &[
            ((0, 1), Some(4)),
            ((1, 1), Some(4)),
            ((16, 8), Some(4)),
            ((17, 8), Some(5)),
            ((10, 64), Some(6)),
            ((4096, 4), Some(12)),
            ((4097, 4), Some(13)),
            ((2 * PAGE, 8), Some(17)),
            ((1 << 30, 1), Some(30)),
            ((1 + (1 << 30), 1), None),
            ((8, 2 * PAGE), None),
        ];
        for &((size, align), class) in cases {
            assert_eq!(class_of(size, align), class, "size {size}, align {align}");
        }
    }

    #[test]
    fn blocks_are_aligned_writable_and_disjoint() {
        let memory = TestMemory::new(64);
        let heap = Pow2::with_pages(&memory);
        let sizes = [1, 24, 7, 300, 16, 5000, 3, 70_000, 40, 1 << 20, 33, 2048];
        let mut blocks: Vec<(usize, usize)> = Vec::new();
        for (n, &size) in sizes.iter().enumerate() {
            let block = unsafe { heap.alloc(layout(size, 8)) };
            let class_size = 1usize << class_of(size, 8).unwrap();
            assert!(memory.contains(block, class_size), "block {n} of {size} B outside the grown memory");
            assert_eq!(block as usize % class_size.min(PAGE), 0, "block {n} of {size} B misaligned");
            unsafe { block.write_bytes(n as u8, size) };
            blocks.push((block as usize, class_size));
        }
        for (n, &(at, size)) in blocks.iter().enumerate() {
            let bytes = unsafe { core::slice::from_raw_parts(at as *const u8, sizes[n]) };
            assert!(bytes.iter().all(|&b| b == n as u8), "block {n} was overwritten");
            for &(other, other_size) in &blocks[n + 1..] {
                assert!(at + size <= other || other + other_size <= at, "blocks overlap");
            }
        }
    }

    #[test]
    fn a_freed_block_serves_its_own_class_again_and_only_that() {
        let memory = TestMemory::new(4);
        let heap = Pow2::with_pages(&memory);
        let first = unsafe { heap.alloc(layout(100, 8)) };
        unsafe { heap.dealloc(first, layout(100, 8)) };
        let other_class = unsafe { heap.alloc(layout(20, 8)) };
        assert_ne!(other_class, first);
        let same_class = unsafe { heap.alloc(layout(128, 8)) };
        assert_eq!(same_class, first);
    }

    #[test]
    fn realloc_keeps_the_block_within_its_class_and_the_bytes_across_classes() {
        let memory = TestMemory::new(4);
        let heap = Pow2::with_pages(&memory);
        let block = unsafe { heap.alloc(layout(40, 4)) };
        unsafe { block.copy_from(b"portrait".as_ptr(), 8) };
        let grown = unsafe { heap.realloc(block, layout(40, 4), 64) };
        assert_eq!(grown, block, "40 and 64 bytes are one class");
        let moved = unsafe { heap.realloc(grown, layout(64, 4), 65) };
        assert_ne!(moved, grown);
        assert_eq!(unsafe { core::slice::from_raw_parts(moved, 8) }, b"portrait");
        // The old block went back to its free list.
        assert_eq!(unsafe { heap.alloc(layout(50, 4)) }, block);
    }

    #[test]
    fn growth_continues_in_the_tail_unless_something_else_grew_the_memory() {
        let memory = TestMemory::new(16);
        let heap = Pow2::with_pages(&memory);
        let small = unsafe { heap.alloc(layout(16, 8)) };
        assert_eq!(memory.used.get(), 2, "one page for the first block");
        // 64 KiB needs a page-aligned start: the next page, one more grown.
        let page = unsafe { heap.alloc(layout(PAGE, 8)) };
        assert_eq!(page as usize, small as usize + PAGE);
        assert_eq!(memory.used.get(), 3);
        // Pages grown by someone else are never handed out, and no page is grown in vain.
        memory.grow(1).unwrap();
        let after = unsafe { heap.alloc(layout(2 * PAGE, 8)) };
        assert_eq!(after as usize, memory.base + 4 * PAGE);
        assert_eq!(memory.used.get(), 6);
    }

    #[test]
    fn the_gap_before_an_aligned_block_serves_smaller_blocks() {
        let memory = TestMemory::new(4);
        let heap = Pow2::with_pages(&memory);
        let first = unsafe { heap.alloc(layout(16, 8)) } as usize;
        let aligned = unsafe { heap.alloc(layout(4096, 8)) } as usize;
        assert_eq!(aligned, first + 4096, "aligned to its size, past a gap of 4,080 bytes");
        // The gap holds blocks of 16, 32, …, 2,048 bytes, each aligned to its size.
        for size in [16, 32, 64, 128, 256, 512, 1024, 2048] {
            let block = unsafe { heap.alloc(layout(size, 8)) } as usize;
            assert!(block > first && block + size <= aligned, "{size} B not from the gap");
            assert_eq!(block % size, 0);
        }
        assert_eq!(memory.used.get(), 2, "no page grown for them");
    }

    #[test]
    fn no_memory_left_is_a_null_pointer() {
        let memory = TestMemory::new(2);
        let heap = Pow2::with_pages(&memory);
        assert!(!unsafe { heap.alloc(layout(PAGE, 8)) }.is_null());
        assert!(unsafe { heap.alloc(layout(PAGE, 8)) }.is_null());
        assert!(unsafe { heap.alloc(layout(8, 2 * PAGE)) }.is_null());
    }
}
