"""The class vocabulary is defined once, in cervdet.datasets.classes."""
from cervdet.datasets import classes
from cervdet.datasets.cric import ABNORMAL_TBS, CRIC_TO_TBS, LABEL_SETS
from cervdet.datasets.roi_sets import CELL_CLASSES, HERLEV_CELL_CLASSES
from cervdet.evaluation.metrics import BETHESDA_SLIDE_GRADES


def test_severity_order_is_the_six_classes_ranked_by_roi_class():
    order = classes.BETHESDA_SEVERITY_ORDER
    assert sorted(order) == sorted(classes.BETHESDA6_CLASSES)
    ranks = [classes.ROI_CLASSES.index(classes.CELL_TO_ROI_CLASS[c])
             for c in order]
    assert ranks == sorted(ranks)
    assert order[0] == classes.NORMAL_CLASS


def test_users_read_the_one_vocabulary():
    assert BETHESDA_SLIDE_GRADES == classes.BETHESDA_SEVERITY_ORDER
    assert LABEL_SETS['bethesda6'] == classes.BETHESDA6_CLASSES
    assert ABNORMAL_TBS == classes.BETHESDA_CLASSES
    assert CELL_CLASSES == classes.BETHESDA6_CLASSES
    assert HERLEV_CELL_CLASSES == classes.ROI_CLASSES
    assert set(classes.CELL_TO_ROI_CLASS) == set(classes.BETHESDA6_CLASSES)
    assert set(CRIC_TO_TBS.values()) == set(classes.BETHESDA6_CLASSES)
    assert set(classes.HERLEV_FOLDER_TO_CELL_CLASS.values()) == \
        set(classes.ROI_CLASSES)
