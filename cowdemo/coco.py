"""COCO class names and the two id spaces.

Contiguous ids are 0..79 (person 0, dog 16, cow 19): detectron2, YOLOX and the notebook's
``pred_classes`` use them. COCO category ids are sparse, 1..90 (person 1, dog 18, cow 21):
torchvision's COCO detectors and every COCO results file use them. Keep names with ids and
convert only at the edges.
"""

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

COCO_CATEGORY_IDS: tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
    85, 86, 87, 88, 89, 90,
)  # fmt: skip

CATEGORY_ID_BY_NAME: dict[str, int] = dict(zip(COCO_CLASSES, COCO_CATEGORY_IDS))
NAME_BY_CATEGORY_ID: dict[int, str] = dict(zip(COCO_CATEGORY_IDS, COCO_CLASSES))
CONTIGUOUS_BY_CATEGORY_ID: dict[int, int] = {c: i for i, c in enumerate(COCO_CATEGORY_IDS)}


def category_id_to_contiguous(category_id: int) -> int:
    """COCO category id (cow = 21) to contiguous index (cow = 19)."""
    return CONTIGUOUS_BY_CATEGORY_ID[int(category_id)]


def contiguous_to_category_id(index: int) -> int:
    """Contiguous index (cow = 19) to COCO category id (cow = 21)."""
    return COCO_CATEGORY_IDS[int(index)]
