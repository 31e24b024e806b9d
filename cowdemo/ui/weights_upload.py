"""Add model weights from the browser (Home and Fine-tune pages): a .pth / .pt / .onnx is checked
(cowdemo.models.upload) and put into checkpoints/, or refused with one line, nothing written."""

from __future__ import annotations

import streamlit as st

from cowdemo.errors import CowdemoError
from cowdemo.ui.common import _registry, checkpoints_dir, show_error

HELP = ("Official COCO weights under their own file name (e.g. yolox_nano.pth, "
        "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth), a cowdemo fine-tune (.pt) or a YOLOX ONNX "
        "export (.onnx). Checked before it is added: pickled code, damaged files and files that "
        "do not fit are refused.")


def weights_uploader(key: str) -> None:
    """An uploader + "Add to checkpoints" button; the result stays shown through reruns."""
    folder = checkpoints_dir()
    upload = st.file_uploader(f"Add model weights to `{folder}`", type=["pth", "pt", "onnx"],
                              key=f"{key}_file", help=HELP)  # fmt: skip
    replace = st.checkbox("Replace a file of the same name", key=f"{key}_replace")
    if st.button("Add to checkpoints", key=f"{key}_add", disabled=upload is None):
        from cowdemo.models.upload import install_weights

        try:
            with st.spinner(f"Checking {upload.name}…"):
                path, what = install_weights(upload.name, upload.getvalue(), folder,
                                             overwrite=replace)
        except CowdemoError as exc:
            st.session_state[f"{key}_result"] = ("error", str(exc), upload.file_id)
        else:
            _registry.clear()  # the new model shows in every picker at once
            st.session_state[f"{key}_result"] = ("ok", f"Added {path.name}: {what}. It is now "
                                                 "in the model pickers.", upload.file_id)
    result = st.session_state.get(f"{key}_result")
    current = upload.file_id if upload is not None else None
    if result and result[0] == "ok" and current in (None, result[2]):
        st.success(result[1])
    elif result and result[0] == "error" and current == result[2]:  # gone once another file
        show_error(CowdemoError(result[1]))
