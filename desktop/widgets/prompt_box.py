"""A prompt box checked against a model's words (the Scene panel's text input).

A scene model reads only the words it was trained on and ignores the rest, so the box shows
that while typing: unknown words get a red wavy underline, the line under the box offers close
known words for each (a click puts one in), and the current word completes from the model's
vocabulary. Enter submits; the box reads as one line (pasted line breaks become spaces).
"""

from __future__ import annotations

import difflib
import html
import re

from PySide6.QtCore import QMimeData, QStringListModel, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QKeyEvent,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import QCompleter, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

# What the engine counts as a word (core.nets.text.words, before lower-casing); kept here so
# the desktop widget does not import the engine's torch modules.
WORD = re.compile(r"[^\W_]+")
MIN_PREFIX = 2  # letters typed before completions are offered


def close_words(word: str, vocab: list[str]) -> list[str]:
    """Known words close to ``word`` (the same matching as the engine's notices)."""
    return difflib.get_close_matches(word, vocab, n=3, cutoff=0.6)


def _utf16(text: str) -> int:
    """Length of ``text`` in Qt's text positions (UTF-16 code units, not code points)."""
    return len(text.encode("utf-16-le")) // 2


class _UnknownWords(QSyntaxHighlighter):
    def __init__(self, document: QTextDocument, box: PromptBox) -> None:
        super().__init__(document)
        self.box = box
        self.format = QTextCharFormat()
        self.format.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        self.format.setUnderlineColor(QColor(220, 40, 40))

    def highlightBlock(self, text: str) -> None:
        for m in WORD.finditer(text):
            if not self.box.knows(m.group()):
                self.setFormat(_utf16(text[: m.start()]), _utf16(m.group()), self.format)


class _OneLineEdit(QPlainTextEdit):
    """Enter submits (unless it picks a completion); line breaks never get in."""

    submitted = Signal()

    def __init__(self, completer: QCompleter) -> None:
        super().__init__()
        self.completer = completer
        completer.setWidget(self)
        completer.activated[str].connect(self.insert_completion)
        self.setTabChangesFocus(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        margins = self.contentsMargins()
        doc_margin = 2 * self.document().documentMargin()
        # Two lines: most prompts fit on one; a long one stays readable while it scrolls.
        self.setFixedHeight(round(2 * self.fontMetrics().lineSpacing() + doc_margin
                                  + margins.top() + margins.bottom() + 4))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        keys = (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        popup = self.completer.popup()
        if popup.isVisible() and event.key() in keys and not self._completion_adds():
            popup.hide()  # the word is complete already: Enter means "generate"
        elif popup.isVisible() and event.key() in (
                *keys, Qt.Key.Key_Tab, Qt.Key.Key_Backtab, Qt.Key.Key_Escape):
            event.ignore()  # the popup takes these (choose or dismiss a completion)
            return
        if event.key() in keys:
            if not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
                self.submitted.emit()  # Ctrl+Enter is left to the window's Run action
            return
        super().keyPressEvent(event)
        self._offer_completions(bool(event.text()))

    def _offer_completions(self, typed: bool) -> None:
        prefix = self._word_before_cursor()
        if not typed or len(prefix) < MIN_PREFIX:
            self.completer.popup().hide()
            return
        self.completer.setCompletionPrefix(prefix.lower())
        if self.completer.completionCount() == 0:
            self.completer.popup().hide()
            return
        popup = self.completer.popup()
        popup.setCurrentIndex(self.completer.completionModel().index(0, 0))
        rect = self.cursorRect()
        rect.setWidth(popup.sizeHintForColumn(0) + popup.verticalScrollBar().sizeHint().width())
        self.completer.complete(rect)

    def _completion_adds(self) -> bool:
        """Whether the popup's highlighted completion would change the word being typed."""
        index = self.completer.popup().currentIndex()
        word = str(index.data() or "") if index.isValid() else ""
        return bool(word) and word.lower() != self._word_before_cursor().lower()

    def _word_before_cursor(self) -> str:
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.StartOfBlock,
                            QTextCursor.MoveMode.KeepAnchor)
        m = re.search(r"[^\W_]+$", cursor.selectedText())
        return m.group() if m else ""

    def insert_completion(self, word: str) -> None:
        """Replace the whole word at the cursor with ``word``, then a space."""
        cursor = self.textCursor()
        before = self._word_before_cursor()
        rest = QTextCursor(cursor)
        rest.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
        after = rest.selectedText()
        m = re.match(r"[^\W_]+", after)
        cursor.movePosition(QTextCursor.MoveOperation.Left, QTextCursor.MoveMode.MoveAnchor,
                            _utf16(before))
        cursor.movePosition(QTextCursor.MoveOperation.Right, QTextCursor.MoveMode.KeepAnchor,
                            _utf16(before) + (_utf16(m.group()) if m else 0))
        cursor.insertText(word + ("" if after.startswith(" ") else " "))
        self.setTextCursor(cursor)

    def insertFromMimeData(self, source: QMimeData) -> None:
        if source.hasText():
            self.insertPlainText(" ".join(source.text().split()))


class PromptBox(QWidget):
    """The prompt, its unknown words and their suggestions. ``submitted``: Enter."""

    submitted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._vocab: list[str] = []
        self._known: set[str] = set()
        self._words = QStringListModel()
        completer = QCompleter(self._words, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setModelSorting(QCompleter.ModelSorting.CaseInsensitivelySortedModel)
        self.edit = _OneLineEdit(completer)
        self.edit.setPlaceholderText("a red star to the left of a blue circle")
        self.edit.submitted.connect(self.submitted)
        self.edit.textChanged.connect(self._show_hints)
        self.highlighter = _UnknownWords(self.edit.document(), self)
        self.hints = QLabel()
        self.hints.setWordWrap(True)
        self.hints.setVisible(False)
        self.hints.linkActivated.connect(self._use_suggestion)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit)
        lay.addWidget(self.hints)

    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(" ".join(str(text).split()))

    def set_vocabulary(self, vocab: list[str]) -> None:
        """The words the model knows; an empty list checks nothing (no model)."""
        self._vocab = list(vocab)
        self._known = set(self._vocab)
        self._words.setStringList(sorted(self._vocab))
        self.highlighter.rehighlight()
        self._show_hints()

    def knows(self, word: str) -> bool:
        return not self._known or word.lower() in self._known

    def unknown_words(self) -> list[str]:
        """The prompt's words the model would ignore, each once, in order."""
        found = (w.lower() for w in WORD.findall(self.text()) if not self.knows(w))
        return list(dict.fromkeys(found))

    def suggestions(self) -> dict[str, list[str]]:
        """Unknown word -> close known words."""
        return {w: close_words(w, self._vocab) for w in self.unknown_words()}

    def replace_word(self, old: str, new: str) -> None:
        """Put ``new`` for every ``old`` (whole words, any case), as one undoable edit."""
        text = WORD.sub(lambda m: new if m.group().lower() == old else m.group(), self.text())
        cursor = QTextCursor(self.edit.document())
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(text)

    def _show_hints(self) -> None:
        parts = []
        for word, close in self.suggestions().items():
            links = ", ".join(f'<a href="{html.escape(word)}:{html.escape(c)}">{html.escape(c)}'
                              "</a>" for c in close)
            parts.append(f"<b>{html.escape(word)}</b> → {links}" if links
                         else f"<b>{html.escape(word)}</b> (no close word)")
        self.hints.setText("Not known to this model (ignored): " + "; ".join(parts)
                           if parts else "")
        self.hints.setVisible(bool(parts))
        self.edit.setToolTip(self.hints.text() if parts else
                             "Describe the scene; Enter generates. Words the model does not "
                             "know are underlined." if self._known else
                             "Describe the picture; Enter generates.")

    def _use_suggestion(self, link: str) -> None:
        old, _, new = link.partition(":")  # words have no ':' (see WORD)
        self.replace_word(old, new)
