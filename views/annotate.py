"""Annotate: draw boxes on a dataset's images in the browser, start from a model's boxes, and
create, import and export datasets. Every change is saved at once, atomically."""

import pandas as pd
import streamlit as st

from cowdemo import annotation as ann
from cowdemo.datasets.formats import is_done
from cowdemo.datasets.store import SAMPLE_NAME, DatasetStore
from cowdemo.errors import CowdemoError
from cowdemo.ui import annotate as page
from cowdemo.ui import annotate_next as nextq
from cowdemo.ui.common import registry, resolved_device, show_error, sidebar

st.title("✏️ Annotate")
cfg = sidebar()
state = st.session_state
store = DatasetStore()
try:
    store.ensure_sample()
except CowdemoError as exc:
    show_error(exc, "Sample dataset")

names = store.names()
if names:
    state["annotate_dataset"] = page.chosen_dataset(names, page.default_dataset(store, names))
    st.selectbox("Dataset", names, key="annotate_dataset", on_change=page.remember,
                 args=("annotate_dataset", "_annotate_dataset"))
name = state.get("_annotate_dataset") if names else None
dataset, problem = page.open_dataset(store, name)

# --- managing datasets (open while there is nothing to annotate) -------------------------------
if dataset is None or not dataset.images:
    state["_annotate_manage_open"] = name  # and kept open once the first images are in
with st.expander("Datasets: new, import, add images, classes, export",
                 expanded=dataset is None or state.get("_annotate_manage_open") == name):
    tab_new, tab_import, tab_add, tab_classes, tab_export = st.tabs(
        ["New", "Import", "Add images", "Classes", "Export"])
    with tab_new, st.form("new_dataset", border=False):
        new_name = st.text_input("Name", placeholder="herd-2024", help="Letters, digits, . _ -")
        new_classes = st.text_input("Classes (comma-separated)", value="cow")
        if st.form_submit_button("Create dataset"):
            try:
                store.create(new_name.strip(), page.split_classes(new_classes))
                page.select_dataset(new_name.strip())
                st.rerun()
            except CowdemoError as exc:
                show_error(exc)
    with tab_import:
        st.caption("COCO JSON (alone, or zipped with its images), or a zip of YOLO txt or Pascal "
                   "VOC XML labels with their images. Everything is checked first; a rejected "
                   "import changes nothing.")
        upload = st.file_uploader("Dataset file (.zip or .json)", type=["zip", "json"],
                                  key="import_upload")
        left, middle, right = st.columns(3)
        import_format = left.selectbox("Format", ["auto", "coco", "yolo", "voc", "images"],
                                       key="import_format")
        import_name = middle.text_input(
            "Dataset name", value=page.name_from_file(upload.name) if upload else "",
            key=f"import_name_{upload.name if upload else ''}")
        import_classes = right.text_input("Classes (optional)", key="import_classes",
                                          help="Needed for YOLO labels without classes.txt")
        replace = st.checkbox("Replace a dataset with this name", key="import_replace")
        if st.button("Import", disabled=upload is None, key="import_button"):
            outcome = page.import_upload(store, upload.name, upload.getvalue(),
                                         import_name.strip(), import_format,
                                         page.split_classes(import_classes) or None, replace)
            state["_annotate_import"] = outcome
            if outcome.ok:
                page.select_dataset(outcome.name)
                st.rerun()
        if upload is None:
            state.pop("_annotate_import", None)  # the report belongs to the file shown
        elif state.get("_annotate_import") is not None:
            page.show_import_outcome(state["_annotate_import"])
    with tab_add:
        if name is None:
            st.info("Create a dataset first.")
        else:
            added_files = st.file_uploader(
                f"Images to add to {name} (same content is stored once)",
                type=["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"],
                accept_multiple_files=True, key=f"add_images_{state.get('_annotate_add', 0)}")
            into_sample = True
            if name == SAMPLE_NAME:
                st.info(f"**{name}** is the app's sample dataset. For your own images, create a "
                        "dataset under *New* first (or pick yours under *Dataset* above).")
                into_sample = st.checkbox(f"Add them to {name} anyway", key="add_to_sample")
            if added_files and st.button("Add images", key="add_images_button",
                                         disabled=not into_sample):
                add_result = page.add_uploads(store, name, [(f.name, f.getvalue())
                                                            for f in added_files])
                state["_annotate_add"] = state.get("_annotate_add", 0) + 1
                state["_annotate_added"] = add_result
                st.rerun()
            # the result stays until new files are chosen (the canvas's reruns keep it)
            add_result = state.get("_annotate_added")
            if added_files or (add_result is not None and add_result.dataset != name):
                state.pop("_annotate_added", None)
            elif add_result is not None:
                page.show_add_outcome(add_result)
    with tab_classes:
        if name is not None:
            try:
                current_classes = store.get(name).classes
            except CowdemoError as exc:
                current_classes = ()
                show_error(exc)
            edited = st.text_input("Classes of this dataset (comma-separated, in order)",
                                   value=", ".join(current_classes), key=f"classes_{name}")
            if st.button("Save classes", key="save_classes"):
                try:
                    store.set_classes(name, page.split_classes(edited))
                    st.rerun()
                except CowdemoError as exc:
                    show_error(exc)
    with tab_export:
        if name is not None:
            page.export_buttons(store, name)
            with st.popover("Delete this dataset"):
                st.write(f"Delete **{name}** with its images and boxes? This cannot be undone"
                         + (" (the sample comes back by itself)." if name == SAMPLE_NAME
                            else "."))
                if st.button("Delete", type="primary", key="delete_dataset"):
                    try:
                        store.delete(name)
                        state.pop("_annotate_dataset", None)
                        st.rerun()
                    except CowdemoError as exc:
                        show_error(exc)

if name is None:
    st.info("No dataset yet: create or import one above.")
    st.stop()
if dataset is None:
    show_error(problem)
    st.stop()
if not dataset.images:
    st.info(f"**{name}** has no images yet: add some under *Add images* above.")
    st.stop()

# --- the image being annotated -----------------------------------------------------------------
image_ids = dataset.image_ids
ready_models = {s.name for s in registry() if s.available}
queue_models = [m for m in cfg.models if m in ready_models]
queue_ids = queue_items = None
if nextq.queue_toggle(name, queue_models) and queue_models:
    try:
        queue_items = nextq.queue(dataset, cfg, queue_models, resolved_device(cfg.device))
        queue_ids = [q.image_id for q in queue_items]
    except CowdemoError as exc:
        show_error(exc, "Queue")
if nextq.jump_requested() and queue_ids:
    page.positions()[name] = queue_ids[0]
image_id = page.current_image(name, dataset)
position = image_ids.index(image_id)
page.show_in_url(name, image_id)
info = dataset.image_info(image_id)
done_count = sum(1 for im in dataset.images if is_done(im))
st.progress(done_count / len(image_ids), text=ann.progress_text(done_count, len(image_ids)))
message = page.message_for(name, image_id)
if message:
    (st.success if not message.startswith("⚠") else st.warning)(message)
if queue_items is not None:
    nextq.show_queue(queue_items, image_id)

nav = st.container()
nav_alerts = st.container()  # errors of the buttons above, shown where they were pressed
tools = st.columns([2, 2, 2, 2, 2], vertical_alignment="bottom")
default_class = tools[0].selectbox(
    "Class for new boxes", dataset.classes, key=f"new_box_class_{name}",
    help="Each new box gets this class. To relabel a box, use the table below the image, or "
         "the canvas's ✏️ edit toggle: click a box, click it again and type.")
size_label = tools[1].select_slider("Image size", list(ann.CANVAS_SIZES), value="Medium",
                                    key="canvas_size")
models = [s.name for s in registry() if s.available]
model = label_as = None
if models:
    model = tools[2].selectbox("Pre-annotation model", models,
                               index=models.index(cfg.model_a) if cfg.model_a in models else 0,
                               key="prefill_model", help="Model A of the sidebar by default.")
    label_options = [page.OWN_CLASS, *dataset.classes]
    label_as = tools[3].selectbox("Label model boxes as", label_options,
                                  index=label_options.index(page.default_label(cfg, dataset)),
                                  key=f"prefill_label_{name}",
                                  help="A COCO model calls cows 'dog': label its boxes 'cow'.")

geometry = ann.CanvasGeometry.fit(int(info["width"]), int(info["height"]),
                                  *ann.CANVAS_SIZES[size_label])
entry = page.canvas_entry(store, name, dataset, image_id, geometry)
image_path = dataset.image_path(image_id)
flag = "✓ done" if is_done(info) else "not done yet"
st.markdown(f"**{info['file_name']}** · {info['width']}×{info['height']} px · {flag}")
result_boxes = page.draw_canvas(entry, image_path, geometry, dataset.classes, default_class)
saved = page.save_if_changed(store, name, image_id, entry, result_boxes)
page.show_save_status(entry, result_boxes, saved)
boxes = result_boxes.boxes if not result_boxes.problems else entry["last"]

if boxes:
    st.caption("Boxes in image pixels:  \n" + ann.box_lines(boxes).replace("\n", "  \n"))
else:
    st.caption("No boxes on this image yet.")
marked = st.toggle("This image is done", value=is_done(info),
                   key=f"done_{name}_{image_id}_{is_done(info)}")
auto = st.toggle("Start every new image from model predictions", key="prefill_auto",
                 disabled=model is None)
st.caption(f"Every change is saved at once (in {store.root}). Draw: drag on the image. Move, "
           "resize, delete: hover the image, turn on ✏️ in its toolbar, select a box, drag it "
           "or its corners; ✕ deletes it.")
with st.expander("Edit the boxes as a table: class, coordinates, delete rows"):
    table = pd.DataFrame(ann.boxes_table(boxes), columns=[*ann.TABLE_COLUMNS, "width", "height"])
    edited = st.data_editor(
        table, key=f"table_{entry['key']}_{page.boxes_digest(boxes)}", num_rows="delete",
        hide_index=True, disabled=["width", "height"],
        column_config={
            "class": st.column_config.SelectboxColumn("class", options=list(dataset.classes),
                                                      required=True),
            **{c: st.column_config.NumberColumn(c, format="%.2f", min_value=0.0)
               for c in ann.TABLE_COLUMNS[1:]},
            "width": st.column_config.NumberColumn("width", format="%.1f"),
            "height": st.column_config.NumberColumn("height", format="%.1f"),
        },
    )
    page.save_table_edits(store, name, image_id, entry, boxes, edited, dataset.classes)

# --- navigation and pre-annotation: shown above the canvas, run after it, so the canvas's
# --- last change is saved before the page moves on
with nav:
    cols = st.columns([1, 4, 1, 2])
    if queue_ids is not None:  # previous / next follow the queue
        first_in_line = not queue_ids or image_id == queue_ids[0]
        last_in_line = not queue_ids or image_id == queue_ids[-1]
    else:
        first_in_line, last_in_line = position == 0, position == len(image_ids) - 1
    go_previous = cols[0].button("◀ Previous", disabled=first_in_line, key="nav_previous")
    labels = {i: page.image_label(dataset, i, n, len(boxes) if i == image_id else None)
              for n, i in enumerate(image_ids, start=1)}
    picked = cols[1].selectbox("Image", image_ids, index=position, format_func=labels.get,
                               key=f"nav_pick_{name}_{image_id}", label_visibility="collapsed")
    go_next = cols[2].button("Next ▶", disabled=last_in_line, key="nav_next")
    done_next = cols[3].button("✓ Done, next to do", type="primary", key="nav_done_next",
                               help="Marks this image done (boxes or not) and opens the next "
                                    "image that is not done.")
prefill = tools[4].button("🤖 Start from model predictions", disabled=model is None,
                          key="prefill", help="Adds the model's boxes (sidebar threshold and "
                          "class filter) that do not overlap yours, to correct them.")
if model is None:
    tools[4].caption("No model is ready (see Home).")

try:
    if marked != is_done(info):
        store.mark_done(name, image_id, marked)
        st.rerun()
    want_prefill = prefill or (auto and page.should_auto_prefill(name, info, boxes))
    if want_prefill and model is not None and not result_boxes.problems:
        page.prefill(store, name, image_id, dataset, model, resolved_device(cfg.device),
                     cfg, None if label_as == page.OWN_CLASS else label_as, boxes)
        st.rerun()
    target = page.navigate(store, name, dataset, image_id, go_previous, go_next, done_next,
                           picked, blocked=bool(result_boxes.problems), queue=queue_ids)
    if target is not None:
        st.rerun()
except CowdemoError as exc:
    with nav_alerts:
        show_error(exc)

opened = nextq.review_panel(store, name, dataset, cfg, queue_models,
                            resolved_device(cfg.device),
                            None if label_as in (None, page.OWN_CLASS) else label_as)
if opened is not None:
    page.positions()[name] = opened
    st.rerun()
