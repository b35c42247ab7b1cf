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

#: The six TBS cell classes: NILM, then the abnormal classes in COCO id order
#: (CRIC's ``bethesda6`` label set; the cell classes of the CRIC ROI sets).
BETHESDA6_CLASSES: Tuple[str, ...] = (NORMAL_CLASS, ) + BETHESDA_CLASSES

#: ROI classes of the ROI classifier (Shi et al., ISBI 2022) in severity
#: order (index = severity); an ROI takes the class of its worst cell.
ROI_CLASSES: Tuple[str, ...] = (NORMAL_CLASS, 'LSIL', 'HSIL')

#: How a cell class counts for the ROI label (ours): ASC-US goes with LSIL
#: (low-grade findings managed alike), ASC-H and SCC with HSIL ("cannot
#: exclude HSIL" and carcinoma are high grade).
CELL_TO_ROI_CLASS: Dict[str, str] = {
    'NILM': 'NILM', 'ASC-US': 'LSIL', 'LSIL': 'LSIL',
    'ASC-H': 'HSIL', 'HSIL': 'HSIL', 'SCC': 'HSIL'}

#: The six TBS cell classes in increasing severity, the grades of a slide
#: call. The same names as :data:`BETHESDA6_CLASSES` in another order on
#: purpose (COCO ids put ASC-H before LSIL; severity puts it after), sorted
#: by their ROI class of :data:`CELL_TO_ROI_CLASS` (checked by a test).
BETHESDA_SEVERITY_ORDER: Tuple[str, ...] = ('NILM', 'ASC-US', 'LSIL', 'ASC-H',
                                            'HSIL', 'SCC')

#: Herlev folder -> cell class of the Herlev ROI sets (ours; Herlev has no
#: Bethesda labels): the normal folders are NILM, light dysplasia LSIL,
#: moderate / severe dysplasia and carcinoma in situ HSIL.
HERLEV_FOLDER_TO_CELL_CLASS: Dict[str, str] = {
    **{f: NORMAL_CLASS for f in HERLEV_NORMAL},
    HERLEV_ABNORMAL[0]: 'LSIL',
    **{f: 'HSIL' for f in HERLEV_ABNORMAL[1:]}}
