//! Runs the Worker's and the objects' futures without wasm-bindgen's task queue.
//!
//! `wasm_bindgen_futures::future_to_promise` polls a future in a microtask and, each time a
//! JavaScript promise it awaits settles, queues another (`queueMicrotask`): three per ingest
//! request, ~3 % of the isolate's time under the ingest benchmark, for nothing — the promise's
//! own callback already runs as a microtask. [`run`] polls at once, and again right inside
//! whatever wakes the future (a `JsFuture`'s callback), so that:
//! - a future that finishes without waiting (most object calls: SQLite storage is
//!   synchronous) answers its value directly, with no `Promise` at all;
//! - one that waits answers a `Promise`, settled from the wake that finishes it.
//!
//! ```ignore
//! #[wasm_bindgen]
//! pub fn call(&self) -> Result<JsValue, JsValue> {
//!     promptly::run(async move { Ok(JsValue::from(work().await)) })
//! }
//! ```
//!
//! Single-threaded: a waker is an `Rc`, which is sound only because the Workers runtime runs
//! an isolate on one thread and this crate's wasm has no threads.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use wasm_bindgen::JsValue;

type Outcome = Result<JsValue, JsValue>;

/// Polls `future` now; its value if it is done, else a `Promise` of it.
pub fn run(future: impl Future<Output = Outcome> + 'static) -> Outcome {
    let task = Rc::new(Task {
        future: RefCell::new(Some(Box::pin(future))),
        settle: RefCell::new(None),
        polling: Cell::new(false),
        woken: Cell::new(false),
        done: RefCell::new(None),
    });
    task.poll();
    if let Some(outcome) = task.done.borrow_mut().take() {
        return outcome;
    }
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        *task.settle.borrow_mut() = Some((resolve, reject));
    });
    Ok(promise.into())
}

struct Task {
    future: RefCell<Option<Pin<Box<dyn Future<Output = Outcome>>>>>,
    /// The `Promise`'s functions, once [`run`] returned one.
    settle: RefCell<Option<(js_sys::Function, js_sys::Function)>>,
    /// Whether a poll is under way (a wake during it polls again after it, not inside it).
    polling: Cell<bool>,
    woken: Cell<bool>,
    /// What the first poll finished with, for [`run`] to answer directly.
    done: RefCell<Option<Outcome>>,
}

impl Task {
    fn poll(self: &Rc<Self>) {
        if self.polling.replace(true) {
            self.woken.set(true);
            return;
        }
        let waker = waker(self);
        loop {
            let poll = match self.future.borrow_mut().as_mut() {
                Some(future) => future.as_mut().poll(&mut Context::from_waker(&waker)),
                None => break, // finished: a late wake has nothing to do
            };
            match poll {
                Poll::Ready(outcome) => {
                    *self.future.borrow_mut() = None;
                    self.finish(outcome);
                    break;
                }
                Poll::Pending if self.woken.replace(false) => continue,
                Poll::Pending => break,
            }
        }
        self.polling.set(false);
    }

    fn finish(&self, outcome: Outcome) {
        let Some((resolve, reject)) = self.settle.borrow_mut().take() else {
            *self.done.borrow_mut() = Some(outcome);
            return;
        };
        // A settle function cannot throw for a value; there is no one to tell if it did.
        let _ = match outcome {
            Ok(value) => resolve.call1(&JsValue::UNDEFINED, &value),
            Err(error) => reject.call1(&JsValue::UNDEFINED, &error),
        };
    }
}

fn waker(task: &Rc<Task>) -> Waker {
    let raw = Rc::into_raw(Rc::clone(task)).cast::<()>();
    // SAFETY: the vtable's functions treat the pointer as the `Rc<Task>` it came from.
    unsafe { Waker::from_raw(RawWaker::new(raw, &VTABLE)) }
}

const VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);

unsafe fn clone(raw: *const ()) -> RawWaker {
    unsafe { Rc::increment_strong_count(raw.cast::<Task>()) };
    RawWaker::new(raw, &VTABLE)
}

unsafe fn wake(raw: *const ()) {
    let task = unsafe { Rc::from_raw(raw.cast::<Task>()) };
    task.poll();
}

unsafe fn wake_by_ref(raw: *const ()) {
    let task = ManuallyDrop::new(unsafe { Rc::from_raw(raw.cast::<Task>()) });
    task.poll();
}

unsafe fn drop(raw: *const ()) {
    unsafe { Rc::decrement_strong_count(raw.cast::<Task>()) };
}
