"""What the labels say: the number of classes, and the open questions every stage agrees on."""

import numpy as np

from stages.labels import class_count, conflicting_groups, open_questions


def test_the_number_of_classes_counts_named_classes_no_sample_carries():
    assert class_count(np.array([0, 2, 1])) == 3
    assert class_count(np.array([0, 1]), ["cat", "dog", "bird"]) == 3


def test_open_questions_are_the_samples_of_groups_whose_labels_disagree():
    group = np.array([0, 0, 1, 1, 2])
    labels = np.array([3, 4, 5, 5, 6])
    assert conflicting_groups(group, labels).tolist() == [True, False, False]
    assert open_questions(group, labels).tolist() == [True, True, False, False, False]


def test_an_odd_image_neither_is_an_open_question_nor_makes_one():
    group = np.array([0, 0, 1, 1, 1])
    labels = np.array([3, 4, 5, 5, 6])
    odd = np.array([False, True, False, False, False])  # a blank in group 0: its label contradicts nothing
    assert open_questions(group, labels, odd).tolist() == [False, False, True, True, True]
