"""The demo corpus: short multilingual conversations written for Sentio (no third-party data)."""

from __future__ import annotations

# (conversation, turn, speaker, language, text, speak-it-aloud voice or "")
DEMO_UTTERANCES: list[tuple[str, int, str, str, str, str]] = [
    ("cafe", 0, "Maya", "en", "I finally got the job, I start on Monday!", "en"),
    ("cafe", 1, "Tom", "en", "That's wonderful news, I'm so proud of you.", "en"),
    ("cafe", 2, "Maya", "en", "I'm nervous though, what if they regret hiring me?", "en"),
    ("cafe", 3, "Tom", "en", "They won't. Stop worrying and enjoy it.", ""),
    ("ghar", 0, "Asha", "hi", "तुमने फिर से मेरी किताब बिना पूछे ले ली!", "hi"),
    ("ghar", 1, "Ravi", "hi", "माफ़ करना दीदी, मैं कल लौटा दूँगा।", "hi"),
    ("ghar", 2, "Asha", "hi", "ठीक है, पर अगली बार पूछ लेना।", ""),
    ("shala", 0, "Sai", "mr", "आज परीक्षेचा निकाल लागला आणि मी पहिला आलो!", "mr"),
    ("shala", 1, "Neha", "mr", "अरे वा! खूप छान, अभिनंदन!", "mr"),
    ("shala", 2, "Sai", "mr", "पण गणितात थोडे कमी गुण मिळाले, वाईट वाटले.", ""),
    ("souq", 0, "Layla", "ar", "لقد فقدت مفاتيحي مرة أخرى، أنا غاضبة جدا!", ""),
    ("souq", 1, "Omar", "ar", "لا تقلقي، سنجدها معا.", ""),
    ("kibbutz", 0, "Noa", "he", "אני כל כך שמחה שבאת לבקר!", ""),
    ("bazaar", 0, "Bilal", "ur", "مجھے ڈر ہے کہ بارش میں راستہ بند ہو جائے گا۔", ""),
    ("chaguan", 0, "Wei", "zh", "今天的天气真好，我们去公园散步吧！", ""),
    ("chaguan", 1, "Lin", "zh", "好主意，可是我有点累了。", ""),
]

DEMO_SCHEMA_QUESTIONS = [
    {
        "key": "emotion", "type": "single_choice", "title": "Main emotion", "required": True,
        "labels": ["joy", "sadness", "anger", "fear", "surprise", "disgust", "neutral"],
    },
    {
        "key": "emotions", "type": "multi_label", "title": "All emotions present (intensity 0–3)", "intensity": True,
        "labels": ["joy", "sadness", "anger", "fear", "surprise", "disgust"],
    },
    {"key": "valence", "type": "numeric", "title": "Valence", "min": 1, "max": 5, "step": 0.5},
    {"key": "arousal", "type": "numeric", "title": "Arousal", "min": 1, "max": 5, "step": 0.5},
    {"key": "rationale", "type": "text", "title": "Why? (optional)", "max_length": 1000},
    {"key": "regions", "type": "segments", "title": "Emotional regions in the audio", "labels": ["joy", "sadness", "anger", "fear"]},
]

# username -> (password, role, languages); demo only, refused in production mode.
DEMO_ACCOUNTS: dict[str, tuple[str, str, list[str]]] = {
    "lead": ("sentio-demo-lead", "lead", []),
    "reviewer": ("sentio-demo-reviewer", "reviewer", []),
    "annotator": ("sentio-demo-annotator", "annotator", ["en", "hi", "mr", "ar", "he", "ur", "zh"]),
    "marathi": ("sentio-demo-marathi", "annotator", ["mr", "hi"]),
}
