"""Class lists and palettes of the cervical cytology label sets cervdet uses.

Names follow The Bethesda System (TBS). Each list is in the order of the COCO
category ids that cervdet's converters write (id = index + 1).
"""
from typing import Dict, List, Tuple

#: Abnormal squamous classes of TBS (CRIC Cervix crops); NILM cells are the
#: unannotated normal background of a screening image.
BETHESDA_CLASSES: Tuple[str, ...] = ('ASC-US', 'ASC-H', 'LSIL', 'HSIL', 'SCC')
BETHESDA_PALETTE: List[Tuple[int, int, int]] = [
    (255, 215, 0),    # ASC-US  gold
    (255, 140, 0),    # ASC-H   dark orange
    (50, 205, 50),    # LSIL    lime green
    (220, 20, 60),    # HSIL    crimson
    (148, 0, 211),    # SCC     dark violet
]

#: The 11 ThinPrep (TCT) classes of the ComparisonDetector data set.
TCT11_CLASSES: Tuple[str, ...] = ('ASC-US', 'ASC-H', 'LSIL', 'HSIL', 'SCC',
                                  'AGC', 'TRICH', 'CAND', 'FLORA', 'HSV',
                                  'ACTINO')
TCT11_PALETTE: List[Tuple[int, int, int]] = BETHESDA_PALETTE + [
    (0, 191, 255),    # AGC     deep sky blue
    (255, 105, 180),  # TRICH   hot pink (Trichomonas)
    (139, 69, 19),    # CAND    saddle brown (Candida)
    (0, 128, 128),    # FLORA   teal (shift in flora)
    (30, 144, 255),   # HSV     dodger blue (herpes simplex)
    (128, 128, 0),    # ACTINO  olive (Actinomyces)
]

#: Folder name in ``tct_crops_11class`` -> TBS name.
TCT11_FOLDER_TO_CLASS: Dict[str, str] = {
    'ascus': 'ASC-US', 'asch': 'ASC-H', 'lsil': 'LSIL', 'hsil': 'HSIL',
    'scc': 'SCC', 'agc': 'AGC', 'trichomonas': 'TRICH', 'candida': 'CAND',
    'flora': 'FLORA', 'herps': 'HSV', 'actinomyces': 'ACTINO'
}

#: Folder name in ``cric_crops_bethesda`` -> TBS name (NILM = normal).
CRIC_FOLDER_TO_CLASS: Dict[str, str] = {
    'ASC-US': 'ASC-US', 'ASC-H': 'ASC-H', 'LSIL': 'LSIL', 'HSIL': 'HSIL',
    'SCC': 'SCC', 'NILM': 'NILM'
}

NORMAL_CLASS = 'NILM'

#: Herlev (Jantzen et al., 2005) class folders: the normal ones and the
#: abnormal (dysplasia / carcinoma) ones, in Herlev's order.
HERLEV_NORMAL: Tuple[str, ...] = ('normal_superficiel', 'normal_intermediate',
                                  'normal_columnar')
HERLEV_ABNORMAL: Tuple[str, ...] = ('light_dysplastic', 'moderate_dysplastic',
                                    'severe_dysplastic', 'carcinoma_in_situ')
