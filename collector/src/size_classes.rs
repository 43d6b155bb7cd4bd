//! The Worker's memory allocator: free lists by size class in front of the system allocator.
//!
//! An ingest request allocates a few hundred small blocks (an event's strings and maps, the
//! deduplication keys, the row's values) and frees them before it answers. dlmalloc, Rust's
//! allocator for `wasm32-unknown-unknown`, spent ~5 % of the isolate's time on them under the
//! ingest benchmark. Here a block of at most [`MAX_SMALL`] bytes comes from its size class's
//! free list (a pop) and goes back to it (a push): no search, no splitting, no coalescing.
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: SizeClasses = SizeClasses::new();
//! ```
//!
//! Invariants:
//! - Small blocks are carved from 64 KiB regions taken from the system allocator and never
//!   given back to it: a freed block only serves its own class again. The memory held is the
//!   peak of small blocks in use per class; wasm memory never shrinks anyway.
//! - Every class size is a multiple of 16 and regions are 16-aligned, so every small block is
//!   16-aligned; a layout that asks for more goes to the system allocator.
//! - Single-threaded: the Workers runtime gives each isolate one thread (and this crate's wasm
//!   has no atomics). The `Sync` impl below holds only for that target.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Largest block served from the free lists; larger ones go to the system allocator.
const MAX_SMALL: usize = 4096;
/// Blocks of 16..=256 bytes in steps of 16, then four classes per power of two up to 4096.
const CLASSES: usize = 16 + 4 * 4;
const REGION: usize = 64 * 1024;
const ALIGN: usize = 16;

/// The size class of a small block of `size` bytes (1..=[`MAX_SMALL`]): its index and size.
fn class_of(size: usize) -> (usize, usize) {
    if size <= 256 {
        let index = size.div_ceil(16) - 1;
        return (index, (index + 1) * 16);
    }
    // 256 < size <= 4096: four steps between consecutive powers of two.
    let power = usize::BITS - 1 - (size - 1).leading_zeros(); // 8..=11
    let step = 1usize << (power - 2);
    let steps = (size - 1) / step + 1; // 5..=8
    let index = 16 + (power as usize - 8) * 4 + (steps - 5);
    (index, steps * step)
}

struct Heap {
    /// Each class's free blocks, linked through their first word.
    free: [*mut u8; CLASSES],
    /// Where the current region's unused part starts and ends.
    next: *mut u8,
    end: *mut u8,
}

pub struct SizeClasses {
    heap: UnsafeCell<Heap>,
}

// Single-threaded target: see the module's invariants.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for SizeClasses {}

impl SizeClasses {
    pub const fn new() -> Self {
        let heap = Heap { free: [ptr::null_mut(); CLASSES], next: ptr::null_mut(), end: ptr::null_mut() };
        SizeClasses { heap: UnsafeCell::new(heap) }
    }

    fn is_small(layout: Layout) -> bool {
        layout.size() <= MAX_SMALL && layout.align() <= ALIGN
    }

    /// A block of `class`'s `size`: from the free list, else from the current region.
    unsafe fn take(&self, class: usize, size: usize) -> *mut u8 {
        let heap = unsafe { &mut *self.heap.get() };
        let head = heap.free[class];
        if !head.is_null() {
            heap.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        if (heap.end as usize) - (heap.next as usize) < size {
            // The old region's tail (less than one block) stays unused.
            let region = unsafe { System.alloc(Layout::from_size_align_unchecked(REGION, ALIGN)) };
            if region.is_null() {
                return region;
            }
            heap.next = region;
            heap.end = unsafe { region.add(REGION) };
        }
        let block = heap.next;
        heap.next = unsafe { block.add(size) };
        block
    }

    unsafe fn give_back(&self, block: *mut u8, class: usize) {
        let heap = unsafe { &mut *self.heap.get() };
        unsafe { block.cast::<*mut u8>().write(heap.free[class]) };
        heap.free[class] = block;
    }
}

impl Default for SizeClasses {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Self::is_small(layout) {
            true => {
                let (class, size) = class_of(layout.size());
                unsafe { self.take(class, size) }
            }
            false => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match Self::is_small(layout) {
            true => unsafe { self.give_back(block, class_of(layout.size()).0) },
            false => unsafe { System.dealloc(block, layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (Self::is_small(layout), Self::is_small(new_layout)) {
            (true, true) if class_of(layout.size()).0 == class_of(new_size).0 => block,
            (false, false) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_small_size_in_order() {
        let mut last = class_of(1);
        assert_eq!(last, (0, 16));
        for size in 2..=MAX_SMALL {
            let (class, block) = class_of(size);
            assert!(block >= size && block % ALIGN == 0, "size {size}: block {block}");
            assert!(class < CLASSES, "size {size}: class {class}");
            assert!(class == last.0 || class == last.0 + 1, "size {size}: class {class} after {}", last.0);
            if class == last.0 {
                assert_eq!(block, last.1, "size {size}");
            }
            last = (class, block);
        }
        assert_eq!(last, (CLASSES - 1, MAX_SMALL));
        assert_eq!(
            [class_of(256), class_of(257), class_of(320), class_of(321)],
            [(15, 256), (16, 320), (16, 320), (17, 384)]
        );
    }

    #[test]
    fn blocks_are_reused_aligned_and_keep_their_bytes() {
        let heap = SizeClasses::new();
        let layout = |size, align| Layout::from_size_align(size, align).unwrap();
        unsafe {
            let a = heap.alloc(layout(40, 8));
            let b = heap.alloc(layout(40, 8));
            assert_ne!(a, b);
            assert_eq!((a as usize % 16, b as usize % 16), (0, 0));
            heap.dealloc(a, layout(40, 8));
            // Same class (33..=48): the freed block comes back first.
            assert_eq!(heap.alloc(layout(48, 16)), a);

            // Growing within the class keeps the block; past it, the bytes move.
            ptr::write_bytes(b, 7, 40);
            assert_eq!(heap.realloc(b, layout(40, 8), 47), b);
            let grown = heap.realloc(b, layout(47, 8), 5000);
            assert_ne!(grown, b);
            assert!(std::slice::from_raw_parts(grown, 40).iter().all(|&x| x == 7));
            let shrunk = heap.realloc(grown, layout(5000, 8), 100);
            assert!(std::slice::from_raw_parts(shrunk, 40).iter().all(|&x| x == 7));
            heap.dealloc(shrunk, layout(100, 8));

            // Over-aligned layouts go to the system allocator, and come back from it.
            let page = heap.alloc(layout(64, 4096));
            assert_eq!(page as usize % 4096, 0);
            heap.dealloc(page, layout(64, 4096));
        }
    }

    #[test]
    fn a_region_serves_many_blocks_then_another_is_taken() {
        let heap = SizeClasses::new();
        let layout = Layout::from_size_align(4096, 8).unwrap();
        let blocks: Vec<*mut u8> = (0..40).map(|_| unsafe { heap.alloc(layout) }).collect();
        let mut sorted = blocks.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 40, "every block distinct");
        for block in blocks {
            unsafe { heap.dealloc(block, layout) };
        }
    }
}
