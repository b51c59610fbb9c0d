//! The event a plugin sees: a borrowed view plus the changes made to it.

use weir_core::wire::{ColumnRef, EventRef, SourceRef, ValueRef};
use weir_core::{ChangeEvent, Image, Op, Patch, Value};

/// What becomes of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Pass the event on, with any column changes made through [`Event`].
    Keep,
    /// Drop the event.
    Drop,
    /// Replace the event with these events (zero or more).
    Replace(Vec<ChangeEvent>),
    /// The event cannot be processed; it goes to the dead-letter queue
    /// with this reason.
    Fail(String),
}

/// One row image, read-only: columns in table order.
#[derive(Debug, Clone, Copy)]
pub struct RowView<'e, 'a> {
    columns: &'e [ColumnRef<'a>],
}

impl<'e, 'a> RowView<'e, 'a> {
    /// The value of column `name`.
    pub fn get(&self, name: &str) -> Option<ValueRef<'a>> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
    }

    /// The position of column `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Columns in order.
    pub fn columns(&self) -> &'e [ColumnRef<'a>] {
        self.columns
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

/// An event as a plugin sees it. Reading copies nothing; `set_*` and
/// `remove_*` record patches that the host applies.
#[derive(Debug)]
pub struct Event<'a> {
    view: EventRef<'a>,
    patches: Vec<Patch>,
}

impl<'a> Event<'a> {
    pub fn new(view: EventRef<'a>) -> Self {
        Event {
            view,
            patches: Vec::new(),
        }
    }

    pub fn op(&self) -> Op {
        self.view.op
    }

    pub fn source(&self) -> &SourceRef<'a> {
        &self.view.source
    }

    /// The table name (without schema).
    pub fn table(&self) -> &'a str {
        self.view.source.table
    }

    /// The borrowed view, as it arrived.
    pub fn view(&self) -> &EventRef<'a> {
        &self.view
    }

    /// The row image `image`, as it arrived (patches not applied).
    pub fn image(&self, image: Image) -> Option<RowView<'_, 'a>> {
        let columns = match image {
            Image::Key => Some(&self.view.key),
            Image::Before => self.view.before.as_ref(),
            Image::After => self.view.after.as_ref(),
        }?;
        Some(RowView { columns })
    }

    pub fn key(&self) -> RowView<'_, 'a> {
        RowView {
            columns: &self.view.key,
        }
    }

    pub fn before(&self) -> Option<RowView<'_, 'a>> {
        self.image(Image::Before)
    }

    pub fn after(&self) -> Option<RowView<'_, 'a>> {
        self.image(Image::After)
    }

    /// The text of column `name` in the after image, if it is textual.
    pub fn after_text(&self, name: &str) -> Option<&'a str> {
        self.after()?.get(name)?.as_str()
    }

    /// Replaces the value at `index` of `image`.
    pub fn set(&mut self, image: Image, index: usize, value: Value) {
        self.patches.push(Patch {
            image,
            index: index as u32,
            value: Some(value),
        });
    }

    /// Removes the column at `index` of `image`.
    pub fn remove(&mut self, image: Image, index: usize) {
        self.patches.push(Patch {
            image,
            index: index as u32,
            value: None,
        });
    }

    /// Replaces column `name` of the after image; false if there is none.
    pub fn set_after(&mut self, name: &str, value: Value) -> bool {
        self.set_by_name(Image::After, name, value)
    }

    /// Replaces column `name` of `image`; false if there is none.
    pub fn set_by_name(&mut self, image: Image, name: &str, value: Value) -> bool {
        match self.image(image).and_then(|r| r.index_of(name)) {
            Some(i) => {
                self.set(image, i, value);
                true
            }
            None => false,
        }
    }

    /// Patches recorded so far.
    pub fn patches(&self) -> &[Patch] {
        &self.patches
    }

    pub(crate) fn take_patches(&mut self) -> Vec<Patch> {
        std::mem::take(&mut self.patches)
    }

    /// An owned copy with the recorded patches applied.
    pub fn to_owned_event(&self) -> ChangeEvent {
        let mut ev = self.view.to_owned();
        ev.apply_patches(&self.patches)
            .expect("patches recorded through Event refer to existing columns");
        ev
    }
}
